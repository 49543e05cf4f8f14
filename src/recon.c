/* recon.c — the reconcile engine: serializer, desired state and plan,
 * admission through the gate, the executor (the only caller of Proxmox
 * mutations), signed ops, recovery; see recon.h.
 *
 * Sections, in order: helpers; the serializer; desired state, actual
 * state and the plan; the engine; admission; the executor; closing;
 * hub ops; the planner pass; recovery.
 */
#include "recon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "idem.h"
#include "json.h"
#include "opblob.h"
#include "outbox.h"
#include "store.h"
#include "upid.h"

/* ---------------------------------------------------------------- helpers */

static int64_t wall_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies src into dst[n], cut to fit, always NUL-terminated. */
static void copy(char *dst, size_t n, const char *src)
{
	size_t k = src ? strnlen(src, n - 1) : 0;

	if (!n)
		return;
	if (k)
		memcpy(dst, src, k);
	dst[k] = '\0';
}


/* ====================================================== the serializer */

struct qjob {
	struct qjob *next;
	recon_job_fn fn;
	recon_drop_fn drop;
	void *arg;
};

struct lane {
	int64_t key;
	struct qjob *head, *tail;
	size_t n;                    /* waiting */
	bool running, ready;
	struct lane *next_ready;
	struct lane *hnext;          /* hash chain */
};

#define LANE_BUCKETS 1024

struct recon_queue {
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	struct lane *buckets[LANE_BUCKETS];
	struct lane *ready_head, *ready_tail;
	size_t queued;
	unsigned running, max_running;
	bool stopping;
	unsigned nworkers, max_per_lane, max_queued;
	pthread_t th[RECON_WORKERS_MAX];
	unsigned started;
	uint64_t submitted, ran, refused, dropped;
};

struct worker_arg {
	struct recon_queue *q;
	unsigned idx;
};

static size_t bucket_of(int64_t key)
{
	uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;

	return (size_t)(h >> 54) % LANE_BUCKETS;
}

static struct lane *lane_find(struct recon_queue *q, int64_t key)
{
	struct lane *l;

	for (l = q->buckets[bucket_of(key)]; l; l = l->hnext)
		if (l->key == key)
			return l;
	return NULL;
}

static void lane_remove(struct recon_queue *q, struct lane *l)
{
	struct lane **pp = &q->buckets[bucket_of(l->key)];

	while (*pp && *pp != l)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = l->hnext;
	free(l);
}

static void ready_push(struct recon_queue *q, struct lane *l)
{
	l->ready = true;
	l->next_ready = NULL;
	if (q->ready_tail)
		q->ready_tail->next_ready = l;
	else
		q->ready_head = l;
	q->ready_tail = l;
}

static struct lane *ready_pop(struct recon_queue *q)
{
	struct lane *l = q->ready_head;

	if (!l)
		return NULL;
	q->ready_head = l->next_ready;
	if (!q->ready_head)
		q->ready_tail = NULL;
	l->ready = false;
	l->next_ready = NULL;
	return l;
}

static void *worker_main(void *p)
{
	struct worker_arg *wa = p;
	struct recon_queue *q = wa->q;
	unsigned idx = wa->idx;

	free(wa);
	pthread_mutex_lock(&q->mu);
	while (!q->stopping) {
		struct lane *l = ready_pop(q);
		struct qjob *j;

		if (!l) {
			pthread_cond_wait(&q->work, &q->mu);
			continue;
		}
		j = l->head;
		l->head = j->next;
		if (!l->head)
			l->tail = NULL;
		l->n--;
		q->queued--;
		l->running = true;
		q->running++;
		if (q->running > q->max_running)
			q->max_running = q->running;
		pthread_mutex_unlock(&q->mu);
		j->fn(j->arg, idx);
		free(j);
		pthread_mutex_lock(&q->mu);
		l->running = false;
		q->running--;
		q->ran++;
		if (l->n)
			ready_push(q, l);
		else
			lane_remove(q, l);
		if (!q->queued && !q->running)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->mu);
	/* a job may have verified or loaded ECDSA keys (signer rotation):
	 * wolfCrypt's per-thread point cache goes with the thread */
	sig_thread_done();
	return NULL;
}

int recon_queue_new(const struct recon_queue_opts *o, struct recon_queue **out)
{
	struct recon_queue *q;
	pthread_condattr_t ca;
	sigset_t all, old;
	unsigned i;

	if (!o || !out || o->workers < 1 || o->workers > RECON_WORKERS_MAX || o->max_per_lane < 1 ||
	    o->max_queued < 1 || o->max_queued > RECON_QUEUED_MAX)
		return FH_ERR_INVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return FH_ERR_NOMEM;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_cond_init(&q->work, &ca);
	pthread_cond_init(&q->idle, &ca);
	pthread_condattr_destroy(&ca);
	q->nworkers = o->workers;
	q->max_per_lane = o->max_per_lane;
	q->max_queued = o->max_queued;
	/* signals belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < q->nworkers; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (!wa)
			break;
		wa->q = q;
		wa->idx = i;
		if (pthread_create(&q->th[i], NULL, worker_main, wa)) {
			free(wa);
			break;
		}
		q->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (q->started != q->nworkers) {
		recon_queue_free(q);
		return FH_ERR_NOMEM;
	}
	*out = q;
	return 0;
}

int recon_queue_submit(struct recon_queue *q, int64_t key, recon_job_fn fn, recon_drop_fn drop, void *arg)
{
	struct qjob *j;
	struct lane *l;
	int r = 0;

	if (!q || !fn)
		return FH_ERR_INVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return FH_ERR_NOMEM;
	j->fn = fn;
	j->drop = drop;
	j->arg = arg;
	pthread_mutex_lock(&q->mu);
	if (q->stopping) {
		r = FH_ERR_CANCELLED;
		goto out;
	}
	l = lane_find(q, key);
	if (q->queued >= q->max_queued || (l && l->n >= q->max_per_lane)) {
		q->refused++;
		r = FH_ERR_QUEUE_FULL;
		goto out;
	}
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l) {
			r = FH_ERR_NOMEM;
			goto out;
		}
		l->key = key;
		l->hnext = q->buckets[bucket_of(key)];
		q->buckets[bucket_of(key)] = l;
	}
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
	q->queued++;
	q->submitted++;
	j = NULL;
	if (!l->running && !l->ready) {
		ready_push(q, l);
		pthread_cond_signal(&q->work);
	}
out:
	pthread_mutex_unlock(&q->mu);
	free(j);
	return r;
}

void recon_queue_wait_idle(struct recon_queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->queued || q->running)
		pthread_cond_wait(&q->idle, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

size_t recon_queue_lane_busy(struct recon_queue *q, int64_t key)
{
	struct lane *l;
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	l = lane_find(q, key);
	if (l)
		n = l->n + (l->running ? 1 : 0);
	pthread_mutex_unlock(&q->mu);
	return n;
}

void recon_queue_stats(struct recon_queue *q, struct recon_queue_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	out->submitted = q->submitted;
	out->ran = q->ran;
	out->refused = q->refused;
	out->dropped = q->dropped;
	out->running = q->running;
	out->max_running = q->max_running;
	out->queued = q->queued;
	pthread_mutex_unlock(&q->mu);
}

void recon_queue_free(struct recon_queue *q)
{
	unsigned i;
	size_t b;

	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < q->started; i++)
		pthread_join(q->th[i], NULL);
	for (b = 0; b < LANE_BUCKETS; b++) {
		while (q->buckets[b]) {
			struct lane *l = q->buckets[b];
			struct qjob *j;

			q->buckets[b] = l->hnext;
			while ((j = l->head) != NULL) {
				l->head = j->next;
				if (j->drop)
					j->drop(j->arg);
				q->dropped++;
				free(j);
			}
			free(l);
		}
	}
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* ================================================= desired state, plan */

int64_t recon_memory_mib_of_bytes(int64_t bytes)
{
	const int64_t mib = 1024 * 1024;

	if (bytes <= 0)
		return 0;
	return bytes / mib + (bytes % mib ? 1 : 0);
}

void recon_norm_description(const char *s, char *out, size_t n)
{
	size_t k = 0, line_end = 0;

	if (!n)
		return;
	for (; s && *s && k + 1 < n; s++) {
		if (*s == '\r' && s[1] == '\n')
			continue;
		if (*s == '\n') {
			k = line_end;          /* drop the line's trailing blanks */
			if (k + 1 >= n)
				break;
			out[k++] = '\n';
			line_end = k;
			continue;
		}
		out[k++] = *s;
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\v' && *s != '\f')
			line_end = k;
	}
	k = line_end;
	while (k > 0 && out[k - 1] == '\n')
		k--;
	out[k] = '\0';
}

static int cmp_desired(const void *a, const void *b)
{
	const struct recon_desired_guest *x = a, *y = b;

	return x->vmid < y->vmid ? -1 : x->vmid > y->vmid;
}

void recon_desired_free(struct recon_desired *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++)
		free(d->g[i].description);
	free(d->g);
	memset(d, 0, sizeof(*d));
}

static int bad(char *why, size_t whylen, const char *msg, size_t i)
{
	snprintf(why, whylen, "guests[%zu]: %s", i, msg);
	return FH_ERR_DECODE;
}

static int desired_guest(const struct json *o, size_t i, struct recon_desired_guest *g, char *why, size_t whylen)
{
	const struct json *j;
	int64_t v;
	const char *s;

	memset(g, 0, sizeof(*g));
	g->onboot = -1;
	if (!o || o->type != JSON_OBJECT)
		return bad(why, whylen, "not an object", i);
	if (json_int_strict(json_get(o, "vmid"), &v) || v < 100 || v > 999999999)
		return bad(why, whylen, "vmid: want an integer 100..999999999", i);
	g->vmid = (int)v;
	j = json_get(o, "state");
	if (!j || j->type != JSON_STRING)
		return bad(why, whylen, "state: want running|stopped|absent", i);
	s = j->s;
	if (!strcmp(s, "running"))
		g->state = RECON_WANT_RUNNING;
	else if (!strcmp(s, "stopped"))
		g->state = RECON_WANT_STOPPED;
	else if (!strcmp(s, "absent"))
		g->state = RECON_WANT_ABSENT;
	else
		return bad(why, whylen, "state: want running|stopped|absent", i);
	j = json_get(o, "cores");
	if (j && j->type != JSON_NULL) {
		if (json_int_strict(j, &v) || v < 1 || v > RECON_CORES_MAX)
			return bad(why, whylen, "cores: want an integer 1..8192", i);
		g->cores = (int)v;
	}
	j = json_get(o, "memory_mib");
	if (j && j->type != JSON_NULL) {
		if (json_int_strict(j, &v) || v < RECON_MEMORY_MIB_MIN || v > RECON_MEMORY_MIB_MAX)
			return bad(why, whylen, "memory_mib: want an integer 16..16777216", i);
		g->memory_mib = v;
	}
	j = json_get(o, "memory_bytes");
	if (j && j->type != JSON_NULL) {
		if (g->memory_mib)
			return bad(why, whylen, "memory_mib and memory_bytes: give one", i);
		if (json_int_strict(j, &v) || v <= 0 || recon_memory_mib_of_bytes(v) < RECON_MEMORY_MIB_MIN ||
		    recon_memory_mib_of_bytes(v) > RECON_MEMORY_MIB_MAX)
			return bad(why, whylen, "memory_bytes: want an integer of 16 MiB..16 TiB", i);
		g->memory_mib = recon_memory_mib_of_bytes(v);
	}
	j = json_get(o, "description");
	if (j && j->type != JSON_NULL) {
		if (j->type != JSON_STRING || j->slen > RECON_DESCRIPTION_MAX || memchr(j->s, '\0', j->slen))
			return bad(why, whylen, "description: want a string of at most 1023 bytes", i);
		g->description = strdup(j->s);
		if (!g->description)
			return FH_ERR_NOMEM;
	}
	j = json_get(o, "onboot");
	if (j && j->type != JSON_NULL) {
		if (j->type == JSON_BOOL)
			g->onboot = j->b ? 1 : 0;
		else if (!json_int_strict(j, &v) && (v == 0 || v == 1))
			g->onboot = (int)v;
		else {
			free(g->description);
			g->description = NULL;
			return bad(why, whylen, "onboot: want true/false or 0/1", i);
		}
	}
	return 0;
}

int recon_desired_parse(const char *p, size_t n, size_t max_guests, struct recon_desired *out, char *why,
			size_t whylen)
{
	const struct json_limits lim = { RECON_DESIRED_MAX_BYTES, 8, false };
	struct recon_desired d;
	struct json *root = NULL;
	const struct json *gs;
	char jerr[128];
	size_t i;
	int r;

	memset(&d, 0, sizeof(d));
	if (!p || !out)
		return FH_ERR_INVAL;
	if (n > RECON_DESIRED_MAX_BYTES) {
		snprintf(why, whylen, "desired state over %zu bytes", RECON_DESIRED_MAX_BYTES);
		return FH_ERR_TOOBIG;
	}
	r = json_parse(p, n, &lim, &root, jerr, sizeof(jerr));
	if (r) {
		snprintf(why, whylen, "desired state is not JSON: %s", jerr);
		return r == FH_ERR_NOMEM ? r : FH_ERR_DECODE;
	}
	r = FH_ERR_DECODE;
	if (root->type != JSON_OBJECT) {
		snprintf(why, whylen, "desired state: want an object");
		goto out;
	}
	if (json_int_strict(json_get(root, "generation"), &d.generation) || d.generation < 1) {
		snprintf(why, whylen, "generation: want an integer >= 1");
		goto out;
	}
	gs = json_get(root, "guests");
	if (!gs || gs->type != JSON_ARRAY) {
		snprintf(why, whylen, "guests: want an array");
		goto out;
	}
	if (gs->n > max_guests) {
		snprintf(why, whylen, "guests: %zu entries, more than %zu", gs->n, max_guests);
		r = FH_ERR_TOOBIG;
		goto out;
	}
	d.g = calloc(gs->n ? gs->n : 1, sizeof(*d.g));
	if (!d.g) {
		r = FH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < gs->n; i++) {
		r = desired_guest(gs->items[i], i, &d.g[i], why, whylen);
		if (r)
			goto out;
		d.n++;
	}
	qsort(d.g, d.n, sizeof(*d.g), cmp_desired);
	for (i = 1; i < d.n; i++) {
		if (d.g[i].vmid == d.g[i - 1].vmid) {
			snprintf(why, whylen, "guests: vmid %d appears twice", d.g[i].vmid);
			r = FH_ERR_DECODE;
			goto out;
		}
	}
	*out = d;
	memset(&d, 0, sizeof(d));
	r = 0;
out:
	recon_desired_free(&d);
	json_free(root);
	return r;
}

int recon_actual_from_pve(const struct pve_guest *row, const struct pve_guest_config *cfg,
			  struct recon_actual_guest *g)
{
	const char *desc;

	memset(g, 0, sizeof(*g));
	g->vmid = row->vmid;
	g->running = !strcmp(row->status, "running");
	g->status_known = g->running || !strcmp(row->status, "stopped");
	g->memory_mib = 512;
	if (!cfg)
		return 0;
	g->have_config = true;
	g->cores = cfg->cores;
	if (cfg->memory_mib > 0)
		g->memory_mib = cfg->memory_mib;
	g->onboot = cfg->onboot ? 1 : 0;
	desc = pve_guest_config_get(cfg, "description");
	if (desc) {
		g->description = strdup(desc);
		if (!g->description)
			return FH_ERR_NOMEM;
	}
	return 0;
}

void recon_actual_free(struct recon_actual_guest *g, size_t n)
{
	size_t i;

	for (i = 0; g && i < n; i++) {
		free(g[i].description);
		g[i].description = NULL;
	}
}

void recon_plan_free(struct recon_plan *p)
{
	if (!p)
		return;
	free(p->a);
	free(p->awaiting);
	memset(p, 0, sizeof(*p));
}

const char *recon_act_name(enum recon_act a)
{
	switch (a) {
	case RECON_ACT_SET_CONFIG:
		return "set_config";
	case RECON_ACT_START:
		return "start";
	case RECON_ACT_STOP:
		return "stop";
	case RECON_ACT_DESTROY:
		return "destroy";
	}
	return "unknown";
}

static int cmp_actual_ptr(const void *a, const void *b)
{
	const struct recon_actual_guest *x = *(const struct recon_actual_guest *const *)a;
	const struct recon_actual_guest *y = *(const struct recon_actual_guest *const *)b;

	return x->vmid < y->vmid ? -1 : x->vmid > y->vmid;
}

static bool description_differs(const char *want, const char *have)
{
	static _Thread_local char a[RECON_DESCRIPTION_MAX + 1], b[RECON_DESCRIPTION_MAX + 1];

	recon_norm_description(want, a, sizeof(a));
	recon_norm_description(have ? have : "", b, sizeof(b));
	return strcmp(a, b) != 0;
}

int recon_plan(const struct recon_desired *d, const struct recon_actual_guest *actual, size_t nactual,
	       struct recon_plan *out)
{
	struct recon_plan p;
	const struct recon_actual_guest **idx = NULL;
	size_t i = 0, k = 0;
	int r = FH_ERR_NOMEM;

	memset(&p, 0, sizeof(p));
	if (!d || !out || (nactual && !actual))
		return FH_ERR_INVAL;
	/* at most two actions per desired guest */
	p.a = calloc(d->n * 2 + 1, sizeof(*p.a));
	p.awaiting = calloc(d->n + 1, sizeof(*p.awaiting));
	idx = calloc(nactual + 1, sizeof(*idx));
	if (!p.a || !p.awaiting || !idx)
		goto out;
	for (i = 0; i < nactual; i++)
		idx[i] = &actual[i];
	qsort(idx, nactual, sizeof(*idx), cmp_actual_ptr);
	for (i = 0; i < d->n; i++) {
		const struct recon_desired_guest *w = &d->g[i];
		const struct recon_actual_guest *h;
		struct recon_action cfg;
		bool change = false;

		while (k < nactual && idx[k]->vmid < w->vmid)
			k++;
		if (k == nactual || idx[k]->vmid != w->vmid) {
			if (w->state != RECON_WANT_ABSENT)
				p.awaiting[p.nawaiting++] = w->vmid;
			continue;
		}
		h = idx[k];
		if (w->state == RECON_WANT_ABSENT) {
			memset(&p.a[p.n], 0, sizeof(p.a[p.n]));
			p.a[p.n].act = RECON_ACT_DESTROY;
			p.a[p.n].vmid = w->vmid;
			p.a[p.n].onboot = -1;
			p.n++;
			continue;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.act = RECON_ACT_SET_CONFIG;
		cfg.vmid = w->vmid;
		cfg.onboot = -1;
		if (h->have_config) {
			if (w->cores && w->cores != h->cores) {
				cfg.cores = w->cores;
				change = true;
			}
			if (w->memory_mib && w->memory_mib != h->memory_mib) {
				cfg.memory_mib = w->memory_mib;
				change = true;
			}
			if (w->description && description_differs(w->description, h->description)) {
				cfg.description = w->description;
				change = true;
			}
			if (w->onboot >= 0 && w->onboot != h->onboot) {
				cfg.onboot = w->onboot;
				change = true;
			}
		}
		if (change)
			p.a[p.n++] = cfg;
		if (h->status_known && w->state == RECON_WANT_RUNNING && !h->running) {
			memset(&p.a[p.n], 0, sizeof(p.a[p.n]));
			p.a[p.n].act = RECON_ACT_START;
			p.a[p.n].vmid = w->vmid;
			p.a[p.n].onboot = -1;
			p.n++;
			change = true;
		} else if (h->status_known && w->state == RECON_WANT_STOPPED && h->running) {
			memset(&p.a[p.n], 0, sizeof(p.a[p.n]));
			p.a[p.n].act = RECON_ACT_STOP;
			p.a[p.n].vmid = w->vmid;
			p.a[p.n].onboot = -1;
			p.n++;
			change = true;
		}
		if (!change)
			p.nconverged++;
	}
	*out = p;
	memset(&p, 0, sizeof(p));
	r = 0;
out:
	free(idx);
	recon_plan_free(&p);
	return r;
}

int recon_action_to_gate(const struct recon_action *a, const char *host_id, struct gate_action *out)
{
	struct gate_action g;
	char desc[RECON_DESCRIPTION_MAX + 1];
	int r;

	if (!a || !host_id || !out)
		return FH_ERR_INVAL;
	r = gate_action_init(&g, recon_act_name(a->act), host_id, a->vmid);
	if (r)
		return r;
	if (a->act == RECON_ACT_SET_CONFIG) {
		if (a->cores)
			r = gate_action_int(&g, "cores", a->cores);
		if (!r && a->memory_mib)
			r = gate_action_int(&g, "memory", a->memory_mib);
		if (!r && a->onboot >= 0)
			r = gate_action_int(&g, "onboot", a->onboot);
		if (!r && a->description) {
			recon_norm_description(a->description, desc, sizeof(desc));
			if (strlen(desc) >= sizeof(g.b.params[0].str))
				return FH_ERR_INVAL;
			r = gate_action_str(&g, "description", desc);
		}
		if (!r && g.b.nparams == 0)
			r = FH_ERR_INVAL;
	}
	if (r)
		return r;
	*out = g;
	return 0;
}

/* =========================================================== the engine */

#define RECENT_UPIDS 1024            /* UPIDs this process posted or adopted */
#define PENDING_SEEN_MAX 4096        /* desired-state pending decisions audited */
#define STEP_ALWAYS RECON_STEP_ALWAYS
_Static_assert(RECON_STEPS_MAX <= JRNL_JOB_STEPS_MAX, "a job record holds every step of a job");
#define TOKEN_ID_MAX 192

struct upidset {
	char **v;
	size_t n, alloc;
};

static void upidset_free(struct upidset *s);

/* One job inside the engine. */
struct ijob {
	struct recon *r;
	enum jrnl_source source;
	char job_id[RECON_JOB_ID_MAX + 1];   /* idempotency key ("" none) */
	char jkey[RECON_JOB_ID_MAX + 1];     /* journal job id */
	char op_id[129];
	size_t nsteps;
	struct gate_action *steps;           /* nsteps */
	uint32_t flags[RECON_STEPS_MAX];
	uint64_t step_ids[RECON_STEPS_MAX];  /* journal ids of the steps run */
	struct sig_verified *vd;             /* NULL: unsigned */
	int64_t idem_exp;
	int64_t lane;
	uint64_t resume_id;                  /* != 0: execute this journal entry (recovery) */
	struct jrnl_job *rec;                /* multi-step job: its job record once admitted */
	uint64_t rec_id;                     /* the record's id (owned while the job runs), 0 none */
	bool cont;                           /* continue job rec_id from its record (recovery) */
	bool no_final;                       /* resume of an entry whose job record was unreadable:
						close the entry only (the job was closed failed) */
	bool in_active;                      /* job_id is in r->active */
	recon_done_fn done;
	void *done_arg;
	char pending_key[96];                /* desired-state pending dedupe key, "" none */
};

struct recon {
	struct store *st;
	struct gate *gate;
	struct recon_opts o;
	char host_id[128];
	char token_id[TOKEN_ID_MAX];          /* "user@realm!tokenid": our tasks' user */
	struct pve_client *main;             /* planner / recovery side */
	struct pve_client *wc[RECON_WORKERS_MAX];
	struct recon_queue *q;
	atomic_bool blocked;
	atomic_bool stopping;

	pthread_mutex_t mu;                  /* everything below */
	pthread_cond_t mut_cv;
	unsigned mutations, mutations_max;
	char **active;                       /* job ids queued or running */
	size_t nactive, aactive;
	uint64_t *owned;                     /* journal ids queued or running */
	size_t nowned, aowned;
	char recent[RECENT_UPIDS][UPID_MAX];
	size_t nrecent;
	char (*pending_seen)[96];
	size_t npending;
	struct upidset known;                /* UPIDs journal entries recorded (recovery) */
	struct recon_stats s;
};

static void lock(struct recon *r)
{
	pthread_mutex_lock(&r->mu);
}

static void unlock(struct recon *r)
{
	pthread_mutex_unlock(&r->mu);
}

/* ---- small sets under r->mu ---- */

static bool active_has(struct recon *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nactive; i++)
		if (!strcmp(r->active[i], id))
			return true;
	return false;
}

static int active_add(struct recon *r, const char *id)
{
	char *c;

	if (r->nactive == r->aactive) {
		size_t na = r->aactive ? r->aactive * 2 : 16;
		char **nv = realloc(r->active, na * sizeof(*nv));
		if (!nv)
			return FH_ERR_NOMEM;
		r->active = nv;
		r->aactive = na;
	}
	c = strdup(id);
	if (!c)
		return FH_ERR_NOMEM;
	r->active[r->nactive++] = c;
	return 0;
}

static void active_del(struct recon *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nactive; i++) {
		if (!strcmp(r->active[i], id)) {
			free(r->active[i]);
			r->active[i] = r->active[--r->nactive];
			return;
		}
	}
}

static bool owned_has(struct recon *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->nowned; i++)
		if (r->owned[i] == id)
			return true;
	return false;
}

static int owned_add(struct recon *r, uint64_t id)
{
	if (r->nowned == r->aowned) {
		size_t na = r->aowned ? r->aowned * 2 : 16;
		uint64_t *nv = realloc(r->owned, na * sizeof(*nv));
		if (!nv)
			return FH_ERR_NOMEM;
		r->owned = nv;
		r->aowned = na;
	}
	r->owned[r->nowned++] = id;
	return 0;
}

static void owned_del(struct recon *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->nowned; i++) {
		if (r->owned[i] == id) {
			r->owned[i] = r->owned[--r->nowned];
			return;
		}
	}
}

static void recent_add(struct recon *r, const char *upid)
{
	lock(r);
	copy(r->recent[r->nrecent % RECENT_UPIDS], UPID_MAX, upid);
	r->nrecent++;
	unlock(r);
}

static bool recent_has_locked(struct recon *r, const char *upid)
{
	size_t i, n = r->nrecent < RECENT_UPIDS ? r->nrecent : RECENT_UPIDS;

	for (i = 0; i < n; i++)
		if (!strcmp(r->recent[i], upid))
			return true;
	return false;
}

static bool pending_seen(struct recon *r, const char *key, bool add)
{
	size_t i;
	bool seen = false;

	if (!key[0])
		return false;
	lock(r);
	for (i = 0; i < r->npending && i < PENDING_SEEN_MAX; i++)
		if (!strcmp(r->pending_seen[i], key))
			seen = true;
	if (!seen && add) {
		copy(r->pending_seen[r->npending % PENDING_SEEN_MAX], 96, key);
		r->npending++;
	}
	unlock(r);
	return seen;
}

/* ---- the global cap on concurrent Proxmox mutations ---- */

static int mutation_enter(struct recon *r)
{
	lock(r);
	while (r->mutations >= r->o.max_mutations && !atomic_load(&r->stopping))
		pthread_cond_wait(&r->mut_cv, &r->mu);
	if (atomic_load(&r->stopping)) {
		unlock(r);
		return FH_ERR_CANCELLED;
	}
	r->mutations++;
	if (r->mutations > r->mutations_max)
		r->mutations_max = r->mutations;
	unlock(r);
	return 0;
}

static void mutation_leave(struct recon *r)
{
	lock(r);
	r->mutations--;
	pthread_cond_signal(&r->mut_cv);
	unlock(r);
}

static void stat_add(struct recon *r, uint64_t *field, uint64_t n)
{
	lock(r);
	*field += n;
	unlock(r);
}

/* Sleeps ms unless the engine stops; FH_ERR_CANCELLED then. */
static int nap(struct recon *r, int64_t ms)
{
	int64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		struct timespec ts = { 0, 20 * 1000000L };

		if (atomic_load(&r->stopping))
			return FH_ERR_CANCELLED;
		nanosleep(&ts, NULL);
	}
	return atomic_load(&r->stopping) ? FH_ERR_CANCELLED : 0;
}

static int make_client(const struct pve_opts *po, struct pve_client **out, char *err, size_t errlen)
{
	struct pve_err e;
	int r = pve_client_new(po, out, &e);

	if (r)
		snprintf(err, errlen, "proxmox: %s", e.reason);
	return r;
}

int recon_new(const struct recon_opts *o, struct recon **out, char *err, size_t errlen)
{
	struct recon_queue_opts qo;
	struct recon *r;
	const char *eq;
	unsigned i;
	int rc = FH_ERR_INVAL;

	if (!o || !out || !o->st || !o->gate || !o->pve || !o->pve->token)
		return FH_ERR_INVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return FH_ERR_NOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->mut_cv, NULL);
	atomic_init(&r->blocked, false);
	atomic_init(&r->stopping, false);
	r->o = *o;
	r->o.pve = NULL;
	r->st = o->st;
	r->gate = o->gate;
	if (!r->o.workers)
		r->o.workers = 4;
	if (!r->o.max_per_lane)
		r->o.max_per_lane = 16;
	if (!r->o.max_queued)
		r->o.max_queued = 1024;
	if (!r->o.max_mutations)
		r->o.max_mutations = 2;
	if (r->o.lock_wait_ms <= 0)
		r->o.lock_wait_ms = 120000;
	if (r->o.post_retry_ms <= 0)
		r->o.post_retry_ms = 500;
	if (!r->o.audit_max)
		r->o.audit_max = AUDIT_MAX_DEFAULT;
	if (r->o.idem_retention_s <= 0)
		r->o.idem_retention_s = 7 * 86400;
	copy(r->host_id, sizeof(r->host_id), gate_host_id(o->gate));
	eq = strrchr(o->pve->token, '=');
	if (!eq || (size_t)(eq - o->pve->token) >= sizeof(r->token_id)) {
		snprintf(err, errlen, "proxmox: token is not USER@REALM!TOKENID=SECRET");
		rc = FH_ERR_CONFIG;
		goto out;
	}
	memcpy(r->token_id, o->pve->token, (size_t)(eq - o->pve->token));
	r->pending_seen = calloc(PENDING_SEEN_MAX, sizeof(*r->pending_seen));
	if (!r->pending_seen) {
		rc = FH_ERR_NOMEM;
		goto out;
	}
	rc = make_client(o->pve, &r->main, err, errlen);
	for (i = 0; !rc && i < r->o.workers && i < RECON_WORKERS_MAX; i++)
		rc = make_client(o->pve, &r->wc[i], err, errlen);
	if (rc)
		goto out;
	memset(&qo, 0, sizeof(qo));
	qo.workers = r->o.workers;
	qo.max_per_lane = r->o.max_per_lane;
	qo.max_queued = r->o.max_queued;
	rc = recon_queue_new(&qo, &r->q);
	if (rc) {
		snprintf(err, errlen, "recon: bad queue limits (%s)", fh_strerror(rc));
		goto out;
	}
	*out = r;
	r = NULL;
out:
	recon_free(r);
	return rc;
}

void recon_cancel(struct recon *r)
{
	unsigned i;

	if (!r)
		return;
	atomic_store(&r->stopping, true);
	if (r->main)
		pve_cancel(r->main);
	for (i = 0; i < RECON_WORKERS_MAX; i++)
		if (r->wc[i])
			pve_cancel(r->wc[i]);
}

void recon_free(struct recon *r)
{
	unsigned i;
	size_t k;

	if (!r)
		return;
	atomic_store(&r->stopping, true);
	lock(r);
	pthread_cond_broadcast(&r->mut_cv);
	unlock(r);
	recon_queue_free(r->q);
	pve_client_free(r->main);
	for (i = 0; i < RECON_WORKERS_MAX; i++)
		pve_client_free(r->wc[i]);
	for (k = 0; k < r->nactive; k++)
		free(r->active[k]);
	free(r->active);
	free(r->owned);
	free(r->pending_seen);
	upidset_free(&r->known);
	pthread_cond_destroy(&r->mut_cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void recon_set_blocked(struct recon *r, bool blocked)
{
	bool was = atomic_exchange(&r->blocked, blocked);

	if (was && !blocked)
		recon_resume(r);
}

bool recon_blocked(struct recon *r)
{
	return atomic_load(&r->blocked);
}

void recon_stats(struct recon *r, struct recon_stats *out)
{
	lock(r);
	*out = r->s;
	out->mutations_now = r->mutations;
	out->mutations_max = r->mutations_max;
	unlock(r);
	recon_queue_stats(r->q, &out->q);
}

void recon_wait_idle(struct recon *r)
{
	recon_queue_wait_idle(r->q);
}

const char *recon_task_type(const char *op)
{
	static const char *const map[][2] = {
		{ "start", "vzstart" },       { "stop", "vzstop" },     { "shutdown", "vzshutdown" },
		{ "snapshot", "vzsnapshot" }, { "rollback", "vzrollback" },
		{ "delete_snapshot", "vzdelsnapshot" }, { "destroy", "vzdestroy" },
		{ "restore", "vzrestore" },   { "vzdump", "vzdump" },
		{ "backup_prune", "imgdel" },
	};
	size_t i;

	for (i = 0; op && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i][0], op))
			return map[i][1];
	return NULL;
}

/* ---- jobs ---- */

static void ijob_free(struct ijob *j)
{
	if (!j)
		return;
	free(j->steps);
	free(j->vd);
	free(j->rec);
	free(j);
}

static void finish(struct ijob *j, const struct recon_result *res)
{
	struct recon *r = j->r;

	lock(r);
	if (j->in_active)
		active_del(r, j->job_id);
	if (j->resume_id)
		owned_del(r, j->resume_id);
	if (j->rec_id)
		owned_del(r, j->rec_id);
	unlock(r);
	if (j->done)
		j->done(res, j->done_arg);
}

static void job_drop(void *arg)
{
	struct ijob *j = arg;
	struct recon_result res;

	memset(&res, 0, sizeof(res));
	res.reason = FH_ERR_CANCELLED;
	copy(res.why, sizeof(res.why), "the engine stopped before the job ran");
	finish(j, &res);
	ijob_free(j);
}

static void job_run(void *arg, unsigned worker);

static int enqueue(struct recon *r, struct ijob *j)
{
	int rc;

	lock(r);
	if (j->job_id[0] && active_has(r, j->job_id)) {
		unlock(r);
		return FH_ERR_DUPLICATE;
	}
	if (j->resume_id && owned_has(r, j->resume_id)) {
		unlock(r);
		return FH_ERR_DUPLICATE;
	}
	rc = j->job_id[0] ? active_add(r, j->job_id) : 0;
	j->in_active = !rc && j->job_id[0];
	if (!rc && j->resume_id)
		rc = owned_add(r, j->resume_id);
	unlock(r);
	if (rc)
		return rc;
	rc = recon_queue_submit(r->q, j->lane, job_run, job_drop, j);
	if (rc) {
		lock(r);
		if (j->in_active)
			active_del(r, j->job_id);
		if (j->resume_id)
			owned_del(r, j->resume_id);
		unlock(r);
	}
	return rc;
}

/* recon_submit with the key under which a pending_signature decision is
 * audited once (NULL: the job id). */
static int submit_job(struct recon *r, const struct recon_job *job, recon_done_fn done, void *arg,
		      const char *pending_key)
{
	struct ijob *j;
	size_t i;
	int rc;

	if (!r || !job || job->nsteps < 1 || job->nsteps > RECON_STEPS_MAX || (job->is_signed && job->nsteps != 1))
		return FH_ERR_INVAL;
	if (atomic_load(&r->blocked))
		return FH_ERR_BLOCKED;
	if (atomic_load(&r->stopping))
		return FH_ERR_CANCELLED;
	if (memchr(job->job_id, '\0', sizeof(job->job_id)) == NULL || memchr(job->op_id, '\0', sizeof(job->op_id)) == NULL)
		return FH_ERR_INVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return FH_ERR_NOMEM;
	j->r = r;
	j->source = job->source;
	j->nsteps = job->nsteps;
	j->steps = malloc(job->nsteps * sizeof(*j->steps));
	if (!j->steps) {
		ijob_free(j);
		return FH_ERR_NOMEM;
	}
	for (i = 0; i < job->nsteps; i++) {
		j->steps[i] = job->steps[i];
		j->flags[i] = job->step_flags[i];
		if (strcmp(j->steps[i].b.host_id, r->host_id) ||
		    (j->steps[i].b.has_guest ? j->steps[i].b.guest_id : 0) !=
			    (job->steps[0].b.has_guest ? job->steps[0].b.guest_id : 0)) {
			ijob_free(j);
			return FH_ERR_INVAL;     /* one host, one lane per job */
		}
	}
	if (job->is_signed) {
		j->vd = malloc(sizeof(*j->vd));
		if (!j->vd) {
			ijob_free(j);
			return FH_ERR_NOMEM;
		}
		*j->vd = job->vd;
	}
	if (job->source != JRNL_SRC_DESIRED)
		copy(j->job_id, sizeof(j->job_id), job->job_id);
	copy(j->jkey, sizeof(j->jkey), job->job_id);
	copy(j->op_id, sizeof(j->op_id), job->op_id);
	copy(j->pending_key, sizeof(j->pending_key), pending_key ? pending_key : j->job_id);
	j->idem_exp = job->idem_expires_at > 0 ? job->idem_expires_at : wall_s() + r->o.idem_retention_s;
	j->lane = job->steps[0].b.has_guest ? job->steps[0].b.guest_id : 0;
	j->done = done;
	j->done_arg = arg;
	rc = enqueue(r, j);
	if (rc)
		ijob_free(j);
	return rc;
}

int recon_submit(struct recon *r, const struct recon_job *job, recon_done_fn done, void *arg)
{
	return submit_job(r, job, done, arg, NULL);
}

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	struct recon_result res;
};

static void waiter_done(const struct recon_result *res, void *arg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->res = *res;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int recon_run(struct recon *r, const struct recon_job *job, struct recon_result *res)
{
	struct waiter w;
	int rc;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	rc = recon_submit(r, job, waiter_done, &w);
	if (!rc) {
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		*res = w.res;
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return rc;
}

/* ============================================================ admission */

static void notify_result(struct recon *r)
{
	if (r->o.on_result)
		r->o.on_result(r->o.on_result_arg);
}

static const char *reason_name(int code)
{
	return code ? fh_strerror(code) : "";
}

/* Audit record in its own transaction: a failure is counted, never
 * changes the decision (the daemon logs the counter). */
static void audit_alone(struct recon *r, const struct audit_rec *a)
{
	struct store_txn *t = NULL;
	int rc = store_txn_begin(r->st, true, &t);

	if (!rc) {
		rc = audit_append(t, a, r->o.audit_max, NULL);
		if (rc)
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	if (rc)
		stat_add(r, &r->s.audit_failures, 1);
}

/* Canonical params of an action into dst (cap n). */
static int params_text(const struct gate_action *a, char *dst, size_t n)
{
	struct buf b;
	int rc;

	buf_init(&b, n - 1);
	rc = opblob_params_canonical(&a->b, &b);
	if (!rc)
		copy(dst, n, buf_str(&b));
	buf_free(&b);
	return rc;
}

/* Provenance of step k from the journal, never from the hub. */
static int provenance(struct store_txn *t, const struct ijob *j, size_t k, struct gate_prov *p)
{
	const struct gate_action *a = &j->steps[k];
	struct jrnl_provenance jp;
	struct jrnl_entry *e = NULL;
	const struct opblob_param *name;
	size_t i;
	int rc;

	memset(p, 0, sizeof(*p));
	/* the engine's own facts: which job this is (set by the code that
	 * built it, never by the hub: hub ops are "signed", plans "desired"),
	 * and the configured golden archives */
	p->retention = j->source == JRNL_SRC_BACKUP;
	p->golden = gate_names_golden(j->r->gate, a);
	if (!a->b.has_guest)
		return 0;
	rc = jrnl_provenance_txn(t, a->b.guest_id, &jp);
	if (rc)
		return rc == FH_ERR_NOMEM ? rc : 0;      /* fail safe: no provenance */
	p->created_by_agent = jp.created_by_agent;
	p->created_in_job = jp.created_by_agent && j->jkey[0] && !strcmp(jp.create_job_id, j->jkey);
	p->scratch = jp.created_by_agent && jp.scratch;
	name = gate_action_param(a, "name");
	if (!name || name->type != OPBLOB_STR || (strcmp(a->b.op, "rollback") && strcmp(a->b.op, "delete_snapshot")))
		return 0;
	e = malloc(sizeof(*e));
	if (!e)
		return FH_ERR_NOMEM;
	/* an earlier step of this job made this very snapshot, and the
	 * journal says so: same job, same guest, op snapshot, same params,
	 * succeeded */
	for (i = 0; i < k && !p->own_snapshot && j->jkey[0]; i++) {
		const struct opblob_param *sn = gate_action_param(&j->steps[i], "name");
		char want[JRNL_PARAMS_MAX + 1];

		if (!j->step_ids[i] || strcmp(j->steps[i].b.op, "snapshot") || !sn || sn->type != OPBLOB_STR ||
		    strcmp(sn->str, name->str) || params_text(&j->steps[i], want, sizeof(want)) ||
		    jrnl_get_txn(t, j->step_ids[i], e))
			continue;
		p->own_snapshot = !strcmp(e->op, "snapshot") && e->vmid == a->b.guest_id &&
				  e->state == TASK_SUCCEEDED && !strcmp(e->job_id, j->jkey) && !strcmp(e->params, want);
	}
	free(e);
	return 0;
}

enum admit_out { ADMIT_RUN, ADMIT_DONE };

static bool last_step(const struct ijob *j, size_t k, bool failed);

/* The step that runs after step k (which is not the last): the next one,
 * or after a failure the next RECON_STEP_ALWAYS one. */
static size_t next_step(const struct ijob *j, size_t k, bool failed)
{
	size_t m;

	for (m = k + 1; m < j->nsteps; m++)
		if (!failed || (j->flags[m] & STEP_ALWAYS))
			return m;
	return j->nsteps;
}

/* What a transaction may change in the job record, to put back when it
 * does not commit. */
struct rec_save {
	size_t cur;
	uint64_t eid[JRNL_JOB_STEPS_MAX];
	enum task_outcome outcome;
	int reason;
};

static void rec_save(const struct jrnl_job *rec, struct rec_save *sv)
{
	size_t i;

	sv->cur = rec->cur;
	for (i = 0; i < JRNL_JOB_STEPS_MAX; i++)
		sv->eid[i] = rec->steps[i].entry_id;
	sv->outcome = rec->outcome;
	sv->reason = rec->reason;
}

static void rec_restore(struct jrnl_job *rec, const struct rec_save *sv)
{
	size_t i;

	rec->cur = sv->cur;
	for (i = 0; i < JRNL_JOB_STEPS_MAX; i++)
		rec->steps[i].entry_id = sv->eid[i];
	rec->outcome = sv->outcome;
	rec->reason = sv->reason;
}

/* The job record of a multi-step job whose first step is admitted as
 * entry id: every step in canonical form, nothing run yet. */
static int rec_new(const struct ijob *j, uint64_t id, struct jrnl_job **out)
{
	struct jrnl_job *rec = calloc(1, sizeof(*rec));
	size_t i;
	int rc = 0;

	if (!rec)
		return FH_ERR_NOMEM;
	rec->id = id;
	rec->source = j->source;
	copy(rec->job_id, sizeof(rec->job_id), j->jkey);
	copy(rec->op_id, sizeof(rec->op_id), j->op_id);
	rec->idem_expires_at = j->idem_exp;
	rec->nsteps = j->nsteps;
	for (i = 0; !rc && i < j->nsteps; i++) {
		struct jrnl_job_step *st = &rec->steps[i];

		copy(st->op, sizeof(st->op), j->steps[i].b.op);
		st->vmid = j->steps[i].b.has_guest ? j->steps[i].b.guest_id : JRNL_NO_VMID;
		st->flags = (j->flags[i] & JRNL_F__ALL) | ((j->flags[i] & STEP_ALWAYS) ? JRNL_JOB_STEP_ALWAYS : 0);
		rc = params_text(&j->steps[i], st->params, sizeof(st->params));
	}
	rec->steps[0].entry_id = id;
	rec->cur = 0;
	rec->outcome = TASK_OUT_NONE;
	if (rc) {
		free(rec);
		return rc;
	}
	*out = rec;
	return 0;
}

/* Step k > 0 of a multi-step job was decided without executing (or its
 * decision could not be recorded): the job has failed. In t: the job's
 * final outcome when no step runs after k (idempotency key, op result,
 * record deleted), else the record moves on to the next ALWAYS step.
 * *final tells which. The in-memory record is put back on error. */
static int rec_decided(struct store_txn *t, struct ijob *j, size_t k, int reason, bool *final)
{
	struct jrnl_job *rec = j->rec;
	struct rec_save sv;
	int rc = 0;

	*final = false;
	rec_save(rec, &sv);
	if (rec->outcome != TASK_OUT_FAILED) {
		rec->outcome = TASK_OUT_FAILED;
		rec->reason = reason < 0 && reason > FH_ERR__LAST ? reason : FH_ERR_TASK;
	}
	if (last_step(j, k, true)) {
		*final = true;
		if (j->job_id[0] && !j->no_final) {
			rc = idem_set_outcome(t, j->job_id, TASK_OUT_FAILED, reason_name(rec->reason), 0);
			if (rc == FH_ERR_NOT_FOUND)
				rc = 0;
		}
		if (!rc && j->op_id[0] && !j->no_final)
			rc = outbox_put(t, j->op_id, TASK_OUT_FAILED, reason_name(rec->reason));
		if (!rc) {
			rc = jrnl_job_del(t, rec->id);
			if (rc == FH_ERR_NOT_FOUND)
				rc = 0;
		}
	} else {
		rec->cur = next_step(j, k, true);
		rec->steps[rec->cur].entry_id = 0;
		rc = jrnl_job_put(t, rec);
	}
	if (rc)
		rec_restore(rec, &sv);
	return rc;
}

/* Step k's decision in one transaction. ADMIT_RUN with *id set: execute.
 * ADMIT_DONE: res holds the result (not executed). */
static enum admit_out admit(struct ijob *j, size_t k, uint64_t *id, struct recon_result *res)
{
	struct recon *r = j->r;
	const struct gate_action *a = &j->steps[k];
	struct store_txn *t = NULL;
	struct gate_decision d;
	struct gate_prov p;
	struct idem_rec ir;
	struct jrnl_entry *e = NULL;
	struct jrnl_job *rec = NULL;
	struct audit_rec ar;
	struct rec_save sv;
	bool audit_after = false, put_result = false, saved = false;
	int rc;

	memset(res, 0, sizeof(*res));
	*id = 0;
	if (atomic_load(&r->blocked)) {
		res->reason = FH_ERR_BLOCKED;
		copy(res->why, sizeof(res->why), "the hub blocked mutations: not admitted");
		return ADMIT_DONE;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_NOMEM;
		return ADMIT_DONE;
	}
	rc = store_txn_begin(r->st, true, &t);
	if (rc)
		goto fail;
	if (k == 0 && j->job_id[0]) {
		rc = idem_lookup(t, j->job_id, &ir);
		if (!rc) {
			res->replayed = true;
			res->jrnl_id = ir.jrnl_id;
			if (ir.outcome == TASK_OUT_NONE) {
				res->reason = FH_ERR_DUPLICATE;
				copy(res->why, sizeof(res->why), "already executing under an earlier delivery");
				store_txn_abort(t);
			} else {
				res->outcome = ir.outcome;
				res->reason = 0;
				snprintf(res->why, sizeof(res->why), "stored outcome of an earlier delivery%s%s",
					 ir.reason[0] ? ": " : "", ir.reason);
				if (j->op_id[0])
					rc = outbox_put(t, j->op_id, ir.outcome, ir.reason);
				rc = rc ? rc : store_txn_commit(t);
				if (!rc && j->op_id[0])
					notify_result(r);
			}
			stat_add(r, &r->s.replayed, 1);
			free(e);
			return ADMIT_DONE;
		}
		if (rc != FH_ERR_NOT_FOUND)
			goto fail_txn;
	}
	rc = provenance(t, j, k, &p);
	if (rc)
		goto fail_txn;
	gate_decide(a, &p, j->vd, &d);
	rc = gate_record(t, j->vd, &d);
	if (rc)
		goto fail_txn;
	if (d.allowed) {
		copy(e->job_id, sizeof(e->job_id), j->jkey);
		e->source = j->source;
		copy(e->op, sizeof(e->op), a->b.op);
		e->vmid = a->b.has_guest ? a->b.guest_id : JRNL_NO_VMID;
		rc = params_text(a, e->params, sizeof(e->params));
		if (rc)
			goto fail_txn;
		e->flags = j->flags[k] & JRNL_F__ALL;
		if (d.is_signed)
			copy(e->signer_key_id, sizeof(e->signer_key_id), d.signer);
		rc = jrnl_intent(t, e, id);
		if (!rc && k == 0 && j->job_id[0]) {
			memset(&ir, 0, sizeof(ir));
			ir.jrnl_id = *id;
			ir.outcome = TASK_OUT_NONE;
			ir.expires_at = j->idem_exp;
			rc = idem_put(t, j->job_id, &ir);
		}
		/* a multi-step job: what recovery needs to finish it, durable
		 * with the first intent; later steps move the record on */
		if (!rc && k == 0 && j->nsteps > 1) {
			rc = rec_new(j, *id, &rec);
			if (!rc)
				rc = jrnl_job_put(t, rec);
		} else if (!rc && k > 0 && j->rec) {
			rec_save(j->rec, &sv);
			saved = true;
			j->rec->cur = k;
			j->rec->steps[k].entry_id = *id;
			rc = jrnl_job_put(t, j->rec);
		}
		if (rc)
			goto fail_txn;
		rc = store_txn_commit(t);
		t = NULL;
		if (rc)
			goto fail;
		if (rec) {
			j->rec = rec;
			j->rec_id = *id;
			rec = NULL;
			lock(r);
			if (owned_add(r, j->rec_id))
				j->rec_id = 0;   /* not marked: a resume scan finds it owned by its entry */
			unlock(r);
		}
		j->step_ids[k] = *id;
		stat_add(r, &r->s.admitted, 1);
		free(e);
		return ADMIT_RUN;
	}
	/* not executed: pending_signature or rejected */
	res->outcome = d.outcome;
	res->reason = d.reason;
	copy(res->why, sizeof(res->why), d.why);
	if (k > 0 && j->rec) {
		/* a later step of a multi-step job: the job's outcome (failed),
		 * recorded once, when nothing else of it runs */
		bool final = false;

		rec_save(j->rec, &sv);
		saved = true;
		rc = rec_decided(t, j, k, d.reason, &final);
		if (rc)
			goto fail_txn;
		put_result = final && j->op_id[0] && !j->no_final;
	} else {
		if (d.outcome == TASK_OUT_REJECTED && j->job_id[0]) {
			memset(&ir, 0, sizeof(ir));
			ir.outcome = d.outcome;
			copy(ir.reason, sizeof(ir.reason), reason_name(d.reason));
			ir.expires_at = j->idem_exp;
			rc = idem_put(t, j->job_id, &ir);
			if (rc && rc != FH_ERR_DUPLICATE)
				goto fail_txn;
		}
		if (j->op_id[0]) {
			rc = outbox_put(t, j->op_id, d.outcome, reason_name(d.reason));
			if (rc)
				goto fail_txn;
			put_result = true;
		}
	}
	rc = store_txn_commit(t);
	t = NULL;
	if (rc)
		goto fail;
	if (put_result)
		notify_result(r);
	stat_add(r, d.outcome == TASK_OUT_PENDING_SIGNATURE ? &r->s.pending : &r->s.rejected, 1);
	audit_after = !(d.outcome == TASK_OUT_PENDING_SIGNATURE && pending_seen(r, j->pending_key, true));
	if (audit_after) {
		memset(&ar, 0, sizeof(ar));
		ar.decision = d.outcome == TASK_OUT_PENDING_SIGNATURE ? AUDIT_PENDING_SIGNATURE : AUDIT_REJECTED;
		ar.op = a->b.op;
		ar.guest_id = a->b.has_guest ? a->b.guest_id : AUDIT_NO_GUEST;
		ar.signer_key_id = d.is_signed ? d.signer : NULL;
		ar.outcome = d.outcome;
		ar.reason = d.outcome == TASK_OUT_REJECTED ? reason_name(d.reason) : d.why;
		audit_alone(r, &ar);
	}
	free(e);
	return ADMIT_DONE;
fail_txn:
	if (t)
		store_txn_abort(t);
fail:
	if (saved)
		rec_restore(j->rec, &sv);
	free(e);
	free(rec);
	memset(res, 0, sizeof(*res));
	res->outcome = TASK_OUT_FAILED;
	res->reason = rc;
	snprintf(res->why, sizeof(res->why), "could not record the decision: %s (nothing executed)", fh_strerror(rc));
	if (k > 0 && j->rec) {
		/* the job has failed at this step all the same: record that */
		bool final = false;
		int rc2 = store_txn_begin(r->st, true, &t);

		if (!rc2) {
			rc2 = rec_decided(t, j, k, rc, &final);
			if (rc2)
				store_txn_abort(t);
			else
				rc2 = store_txn_commit(t);
		}
		if (!rc2 && final && j->op_id[0] && !j->no_final)
			notify_result(r);
	}
	return ADMIT_DONE;
}

/* ============================================================ executor */

static const char *p_str(const struct gate_action *a, const char *k)
{
	const struct opblob_param *p = gate_action_param(a, k);

	return p && p->type == OPBLOB_STR ? p->str : NULL;
}

static bool p_bool(const struct gate_action *a, const char *k)
{
	const struct opblob_param *p = gate_action_param(a, k);

	if (!p)
		return false;
	if (p->type == OPBLOB_BOOL)
		return p->b;
	if (p->type == OPBLOB_INT)
		return p->num != 0;
	return p->type == OPBLOB_STR && (!strcmp(p->str, "1") || !strcmp(p->str, "true"));
}

static int64_t p_int(const struct gate_action *a, const char *k, int64_t def)
{
	const struct opblob_param *p = gate_action_param(a, k);

	return p && p->type == OPBLOB_INT ? p->num : def;
}

/* The value Proxmox would store for a param, as text. */
static void p_text(const struct opblob_param *p, char *dst, size_t n)
{
	switch (p->type) {
	case OPBLOB_STR:
		copy(dst, n, p->str);
		break;
	case OPBLOB_INT:
		snprintf(dst, n, "%" PRId64, p->num);
		break;
	case OPBLOB_BOOL:
		copy(dst, n, p->b ? "1" : "0");
		break;
	case OPBLOB_NULL:
	default:
		copy(dst, n, "");
		break;
	}
}

/* POSTs the action once. *sync: done without a task (no UPID). */
static int post_once(struct pve_client *c, const struct gate_action *a, char upid[UPID_MAX], bool *sync,
		     struct pve_err *e)
{
	int vmid = a->b.has_guest ? (int)a->b.guest_id : 0;
	const char *op = a->b.op;

	upid[0] = '\0';
	*sync = false;
	if (!strcmp(op, "start"))
		return pve_start(c, vmid, upid, e);
	if (!strcmp(op, "stop"))
		return pve_stop(c, vmid, upid, e);
	if (!strcmp(op, "shutdown"))
		return pve_shutdown(c, vmid, (int)p_int(a, "timeout", 60), p_bool(a, "force_stop"), upid, e);
	if (!strcmp(op, "snapshot"))
		return p_str(a, "name") ? pve_snapshot(c, vmid, p_str(a, "name"), p_str(a, "description"), upid, e)
					: FH_ERR_INVAL;
	if (!strcmp(op, "rollback"))
		return p_str(a, "name") ? pve_rollback(c, vmid, p_str(a, "name"), upid, e) : FH_ERR_INVAL;
	if (!strcmp(op, "delete_snapshot"))
		return p_str(a, "name") ? pve_delete_snapshot(c, vmid, p_str(a, "name"), upid, e) : FH_ERR_INVAL;
	if (!strcmp(op, "destroy"))
		return pve_destroy(c, vmid, p_bool(a, "purge"), p_bool(a, "force"), upid, e);
	if (!strcmp(op, "restore")) {
		struct pve_restore rs;

		memset(&rs, 0, sizeof(rs));
		rs.vmid = vmid;
		rs.ostemplate = p_str(a, "archive");
		rs.storage = p_str(a, "storage");
		rs.force = p_bool(a, "force");
		rs.unique = p_bool(a, "unique");
		rs.start = p_bool(a, "start");
		return rs.ostemplate ? pve_restore_lxc(c, &rs, upid, e) : FH_ERR_INVAL;
	}
	if (!strcmp(op, "vzdump")) {
		struct pve_vzdump vz;

		memset(&vz, 0, sizeof(vz));
		vz.vmid = vmid;
		vz.storage = p_str(a, "storage");
		vz.mode = p_str(a, "mode");
		vz.compress = p_str(a, "compress");
		vz.notes_template = p_str(a, "notes_template");
		return pve_vzdump(c, &vz, upid, sync, e);
	}
	if (!strcmp(op, "backup_prune")) {
		int rc;

		if (!p_str(a, "storage") || !p_str(a, "volid"))
			return FH_ERR_INVAL;
		rc = pve_delete_volume(c, p_str(a, "storage"), p_str(a, "volid"), upid, e);
		if (!rc && !upid[0])
			*sync = true;
		return rc;
	}
	if (!strcmp(op, "set_config")) {
		struct pve_param set[OPBLOB_MAX_PARAMS];
		char vals[OPBLOB_MAX_PARAMS][1024];
		size_t i, n = 0;
		int rc;

		for (i = 0; i < a->b.nparams; i++) {
			const struct opblob_param *p = &a->b.params[i];

			if (!strcmp(p->key, "delete") || !strcmp(p->key, "digest"))
				continue;
			p_text(p, vals[n], sizeof(vals[n]));
			set[n].key = p->key;
			set[n].value = vals[n];
			n++;
		}
		rc = pve_set_config(c, vmid, set, n, p_str(a, "delete"), p_str(a, "digest"), upid, e);
		if (!rc && !upid[0])
			*sync = true;
		return rc;
	}
	return FH_ERR_UNSUPPORTED;
}

static bool text_has(const struct pve_err *e, const char *needle)
{
	return strstr(e->reason, needle) || strstr(e->exitstatus, needle);
}

/* "Already in the wanted state" answers: always for power ops; after a
 * retry or in recovery (an earlier attempt may have done it) for the
 * others. */
static bool already_done(const char *op, const struct pve_err *e, bool retry)
{
	if (!strcmp(op, "start"))
		return text_has(e, "already running");
	if (!strcmp(op, "stop") || !strcmp(op, "shutdown"))
		return text_has(e, "not running");
	if (!retry)
		return false;
	if (!strcmp(op, "destroy") || !strcmp(op, "delete_snapshot"))
		return text_has(e, "does not exist");
	if (!strcmp(op, "snapshot"))
		return text_has(e, "already used") || text_has(e, "already exists");
	if (!strcmp(op, "restore"))
		return text_has(e, "already exists");
	return false;
}

enum transient { TR_NO, TR_REFUSED, TR_AMBIGUOUS };

/* Refused: the server said no before doing anything (retry is safe).
 * Ambiguous: the request may have reached the server (look for a task
 * before retrying). */
static enum transient transient_of(int rc, const struct pve_err *e)
{
	if (rc == FH_ERR_TRANSPORT || rc == FH_ERR_TIMEOUT || rc == FH_ERR_HTTP_PROXY)
		return TR_AMBIGUOUS;
	if (rc == FH_ERR_HTTP_5XX &&
	    (e->http_status == 503 || strstr(e->reason, "got timeout") || strstr(e->reason, "can't lock file")))
		return TR_REFUSED;
	return TR_NO;
}

/* UPIDs the journal knows (sorted), for adoption: a task already recorded
 * by an entry is never adopted by another. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool known_has(struct recon *r, const char *upid);

/* A task this agent started for a (type, guest, user), at or after since,
 * that no journal entry recorded: the one a lost POST started. */
static int find_task(struct recon *r, struct pve_client *c, const struct gate_action *a, int64_t since,
		     char upid[UPID_MAX], struct pve_err *e)
{
	const char *type = recon_task_type(a->b.op);
	struct pve_task_entry *ts = NULL;
	char idbuf[96];
	size_t n = 0, i, best = SIZE_MAX;
	int rc;

	upid[0] = '\0';
	if (!type)
		return FH_ERR_NOT_FOUND;
	if (!strcmp(a->b.op, "backup_prune")) {
		/* an imgdel worker's id is "VMID@STORAGE": not a vmid filter */
		if (!p_str(a, "storage") ||
		    (size_t)snprintf(idbuf, sizeof(idbuf), "%" PRId64 "@%s", a->b.has_guest ? a->b.guest_id : 0,
				     p_str(a, "storage")) >= sizeof(idbuf))
			return FH_ERR_NOT_FOUND;
		rc = pve_list_tasks(c, 0, since > 2 ? since - 2 : 0, &ts, &n, e);
	} else {
		snprintf(idbuf, sizeof(idbuf), "%" PRId64, a->b.has_guest ? a->b.guest_id : 0);
		rc = pve_list_tasks(c, a->b.has_guest ? (int)a->b.guest_id : 0, since > 2 ? since - 2 : 0, &ts, &n,
				    e);
	}
	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		struct upid u;

		if (upid_parse(ts[i].upid, strlen(ts[i].upid), &u, NULL))
			continue;
		if (strcmp(u.type, type) || strcmp(u.user, r->token_id) || (int64_t)u.starttime < since - 2)
			continue;
		if (a->b.has_guest && strcmp(u.id, idbuf))
			continue;
		if (known_has(r, ts[i].upid))
			continue;
		if (best == SIZE_MAX || ts[i].starttime < ts[best].starttime)
			best = i;
	}
	if (best != SIZE_MAX)
		copy(upid, UPID_MAX, ts[best].upid);
	free(ts);
	return best == SIZE_MAX ? FH_ERR_NOT_FOUND : 0;
}

/* Waits until the guest's config lock is gone (lock_wait_ms at most). A
 * guest that does not exist has no lock. */
static int wait_unlocked(struct recon *r, struct pve_client *c, int vmid, char *why, size_t whylen)
{
	int64_t end = mono_ms() + r->o.lock_wait_ms, step = 100;
	struct pve_guest g;
	struct pve_err e;

	for (;;) {
		int rc = pve_guest_status(c, vmid, &g, &e);

		if (rc == FH_ERR_CANCELLED)
			return rc;
		if (rc || !g.lock[0])
			return 0;      /* no guest (restore), or unlocked; a read error: the POST will tell */
		if (mono_ms() >= end) {
			snprintf(why, whylen, "guest %d config still locked (%s)", vmid, g.lock);
			return FH_ERR_TIMEOUT;
		}
		rc = nap(r, step);
		if (rc)
			return rc;
		step = step * 2 > 2000 ? 2000 : step * 2;
	}
}

/* ============================================================== closing */

struct close_ctx {
	size_t k;                    /* the step being closed */
	enum task_outcome job_outcome; /* so far: NONE, EXECUTED, FAILED (sticky) */
	int job_reason;
};

/* Closes entry id in one transaction with its audit record and, when
 * last, the job's idempotency outcome and op result. A signer_rotate
 * applies its rotation in the same transaction. posted: feed POSTED first
 * (a synchronous success). */
static int close_entry(struct ijob *j, uint64_t id, const struct gate_action *a, bool posted, enum task_event ev,
		       enum task_outcome out, int reason, const char *text, struct close_ctx *cc)
{
	struct recon *r = j->r;
	struct store_txn *t = NULL;
	struct audit_rec ar;
	struct jrnl_entry *e = NULL;
	struct rec_save sv;
	char why[256] = "";
	bool rotate = ev == TASK_EV_SUCCEEDED && !strcmp(a->b.op, "signer_rotate"), last, saved = false;
	enum task_outcome jo;
	int jr, rc;

	e = malloc(sizeof(*e));
	if (!e)
		return FH_ERR_NOMEM;
again:
	jo = cc->job_outcome;
	jr = cc->job_reason;
	if (ev != TASK_EV_SUCCEEDED && jo != TASK_OUT_FAILED) {
		jo = TASK_OUT_FAILED;
		jr = reason ? reason : FH_ERR_TASK;
	} else if (jo == TASK_OUT_NONE) {
		jo = TASK_OUT_EXECUTED;
	}
	last = last_step(j, cc->k, jo == TASK_OUT_FAILED);
	rc = store_txn_begin(r->st, true, &t);
	if (rc)
		goto out;
	rc = jrnl_get_txn(t, id, e);
	if (!rc && posted && e->state == TASK_INTENT)
		rc = jrnl_event(t, id, TASK_EV_POSTED);
	if (!rc && rotate) {
		rc = gate_rotate(r->gate, t, a, why, sizeof(why));
		if (rc && rc != FH_ERR_STORE && rc != FH_ERR_STORE_FULL && rc != FH_ERR_NOMEM) {
			/* the rotation is refused: the op fails, nothing changes */
			store_txn_abort(t);
			t = NULL;
			rotate = false;
			ev = TASK_EV_FAILED;
			out = TASK_OUT_FAILED;
			reason = rc;
			text = why;
			goto again;
		}
	}
	if (!rc)
		rc = jrnl_close(t, id, ev, out, reason_name(reason), text);
	if (!rc) {
		memset(&ar, 0, sizeof(ar));
		ar.decision = e->signer_key_id[0] ? AUDIT_SIGNED : AUDIT_BENIGN;
		ar.op = a->b.op;
		ar.guest_id = a->b.has_guest ? a->b.guest_id : AUDIT_NO_GUEST;
		ar.signer_key_id = e->signer_key_id;
		ar.outcome = out;
		ar.reason = reason ? (text && *text ? text : reason_name(reason)) : "";
		rc = audit_append(t, &ar, r->o.audit_max, NULL);
	}
	if (!rc && last && j->job_id[0] && !j->no_final) {
		rc = idem_set_outcome(t, j->job_id, jo, reason_name(jr), id);
		if (rc == FH_ERR_NOT_FOUND)
			rc = 0;       /* a recovered entry whose key was pruned */
	}
	if (!rc && last && j->op_id[0] && !j->no_final)
		rc = outbox_put(t, j->op_id, jo, reason_name(jr));
	if (!rc && j->rec) {
		/* the job record moves on with the close: deleted with the
		 * final outcome, else it names the next step to admit */
		rec_save(j->rec, &sv);
		saved = true;
		j->rec->outcome = jo;
		j->rec->reason = jo != TASK_OUT_FAILED ? 0 : jr < 0 && jr > FH_ERR__LAST ? jr : FH_ERR_INTERNAL;
		if (last) {
			rc = jrnl_job_del(t, j->rec->id);
			if (rc == FH_ERR_NOT_FOUND)
				rc = 0;
		} else {
			j->rec->cur = next_step(j, cc->k, jo == TASK_OUT_FAILED);
			j->rec->steps[j->rec->cur].entry_id = 0;
			rc = jrnl_job_put(t, j->rec);
		}
	}
	if (rc) {
		store_txn_abort(t);
		goto out;
	}
	rc = store_txn_commit(t);
	if (!rc) {
		cc->job_outcome = jo;
		cc->job_reason = jr;
		saved = false;
	}
	if (!rc && rotate) {
		char err[256];

		gate_reload(r->gate, err, sizeof(err));
	}
	if (!rc && last && j->op_id[0])
		notify_result(r);
out:
	if (saved)
		rec_restore(j->rec, &sv);
	if (rc)
		stat_add(r, &r->s.store_failures, 1);
	free(e);
	return rc;
}

/* The job's final outcome when no close carried it (a later step was not
 * admitted): idempotency key and op result. */
static void job_final(struct ijob *j, enum task_outcome out, int reason)
{
	struct recon *r = j->r;
	struct store_txn *t = NULL;
	int rc;

	if (out == TASK_OUT_NONE || (!j->job_id[0] && !j->op_id[0]))
		return;
	rc = store_txn_begin(r->st, true, &t);
	if (rc)
		return;
	if (j->job_id[0]) {
		rc = idem_set_outcome(t, j->job_id, out, reason_name(reason), 0);
		if (rc == FH_ERR_NOT_FOUND)
			rc = 0;
	}
	if (!rc && j->op_id[0])
		rc = outbox_put(t, j->op_id, out, reason_name(reason));
	if (rc) {
		store_txn_abort(t);
		return;
	}
	if (!store_txn_commit(t) && j->op_id[0])
		notify_result(r);
}

/* Records the UPID durably (state posted). */
static int record_upid(struct recon *r, uint64_t id, const char *upid)
{
	struct store_txn *t = NULL;
	struct jrnl_entry *e = malloc(sizeof(*e));
	int rc;

	if (!e)
		return FH_ERR_NOMEM;
	rc = store_txn_begin(r->st, true, &t);
	if (!rc) {
		rc = jrnl_get_txn(t, id, e);
		if (!rc)
			rc = jrnl_set_upid(t, id, upid);
		if (!rc && e->state == TASK_INTENT)
			rc = jrnl_event(t, id, TASK_EV_POSTED);
		if (rc)
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	free(e);
	if (rc)
		stat_add(r, &r->s.store_failures, 1);
	recent_add(r, upid);
	return rc;
}

/* Waits for a posted task and closes its entry. */
static void await_and_close(struct ijob *j, struct pve_client *c, uint64_t id, const struct gate_action *a,
			    const char *upid, bool retry, struct close_ctx *cc, struct recon_result *res)
{
	struct pve_task_result tr;
	struct pve_err e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = pve_task_wait(c, upid, &tr, &e);
	copy(res->upid, sizeof(res->upid), upid);
	res->jrnl_id = id;
	if (!rc || (rc == FH_ERR_TASK && already_done(a->b.op, &e, retry))) {
		res->outcome = TASK_OUT_EXECUTED;
		res->reason = 0;
		snprintf(res->why, sizeof(res->why), "%s", rc ? "already in effect" : tr.exitstatus);
		close_entry(j, id, a, false, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, 0, tr.warnings ? tr.exitstatus : "",
			    cc);
		stat_add(j->r, &j->r->s.executed, 1);
		return;
	}
	if (rc == FH_ERR_TASK) {
		res->outcome = TASK_OUT_FAILED;
		res->reason = rc;
		copy(res->why, sizeof(res->why), e.exitstatus);
		close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, rc, e.exitstatus, cc);
		stat_add(j->r, &j->r->s.failed, 1);
		return;
	}
	/* cancelled, timed out, unreadable: the task decides; recovery closes it */
	res->outcome = TASK_OUT_NONE;
	res->reason = rc;
	snprintf(res->why, sizeof(res->why), "task left in flight: %.150s", e.reason);
}

/* ---- host-executed ops ---- */

static const char *const HOST_OPS[] = { "storage_wipe" };

bool recon_host_op(const char *op)
{
	size_t i;

	for (i = 0; op && i < sizeof(HOST_OPS) / sizeof(HOST_OPS[0]); i++)
		if (!strcmp(op, HOST_OPS[i]))
			return true;
	return false;
}

/* The shape a host op must have before it is handed over: storage_wipe is
 * host-scoped with a string durable_id (and at most a string fstype). */
static const char *host_op_shape(const struct gate_action *a)
{
	const struct opblob_param *f = gate_action_param(a, "fstype");
	const char *id = p_str(a, "durable_id");
	size_t i;

	if (a->b.has_guest)
		return "storage_wipe is host-scoped (no guest)";
	if (!id || !*id)
		return "storage_wipe needs a string durable_id";
	if (f && f->type != OPBLOB_STR)
		return "storage_wipe: fstype must be a string";
	for (i = 0; i < a->b.nparams; i++)
		if (strcmp(a->b.params[i].key, "durable_id") && strcmp(a->b.params[i].key, "fstype"))
			return "storage_wipe: unknown param (want durable_id, fstype)";
	return NULL;
}

/* Feeds POSTED to an entry still in intent: "handed to the host
 * executor" is on disk before the executor runs. */
static int mark_handed(struct recon *r, uint64_t id)
{
	struct store_txn *t = NULL;
	struct jrnl_entry *e = malloc(sizeof(*e));
	int rc;

	if (!e)
		return FH_ERR_NOMEM;
	rc = store_txn_begin(r->st, true, &t);
	if (!rc) {
		rc = jrnl_get_txn(t, id, e);
		if (!rc && e->state == TASK_INTENT)
			rc = jrnl_event(t, id, TASK_EV_POSTED);
		if (rc)
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	free(e);
	if (rc)
		stat_add(r, &r->s.store_failures, 1);
	return rc;
}

/* Step k is a host op (recon_host_op): handed to o.exec_host once, under
 * the mutation cap; never retried. No UPID. */
static void exec_host_step(struct ijob *j, size_t k, uint64_t id, struct close_ctx *cc, struct recon_result *res)
{
	struct recon *r = j->r;
	const struct gate_action *a = &j->steps[k];
	const char *bad;
	char why[256] = "";
	int rc;

	if (!r->o.exec_host) {
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_UNSUPPORTED;
		copy(res->why, sizeof(res->why), "no host executor");
		close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, FH_ERR_UNSUPPORTED, res->why, cc);
		stat_add(r, &r->s.failed, 1);
		return;
	}
	if ((bad = host_op_shape(a)) != NULL) {
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_INVAL;
		copy(res->why, sizeof(res->why), bad);
		close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, FH_ERR_INVAL, bad, cc);
		stat_add(r, &r->s.failed, 1);
		return;
	}
	if (atomic_load(&r->blocked)) {
		/* a host op in flight is never run later: closed now, not run */
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_BLOCKED;
		copy(res->why, sizeof(res->why), "blocked before the host executor ran: not run");
		close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, FH_ERR_BLOCKED, res->why, cc);
		stat_add(r, &r->s.failed, 1);
		return;
	}
	rc = mutation_enter(r);
	if (rc) {
		res->reason = rc;
		copy(res->why, sizeof(res->why), "the engine is stopping: intent left in flight (recovery closes it)");
		return;
	}
	rc = mark_handed(r, id);
	if (rc) {
		mutation_leave(r);
		res->reason = rc;
		copy(res->why, sizeof(res->why), "could not journal the hand-over: not run, left in flight");
		return;
	}
	stat_add(r, &r->s.posts, 1);
	rc = r->o.exec_host(r->o.exec_host_ctx, a, j->vd, why, sizeof(why));
	mutation_leave(r);
	why[sizeof(why) - 1] = '\0';
	if (!rc) {
		res->outcome = TASK_OUT_EXECUTED;
		copy(res->why, sizeof(res->why), why[0] ? why : "done");
		close_entry(j, id, a, true, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, 0, "", cc);
		stat_add(r, &r->s.executed, 1);
		return;
	}
	if (rc > 0 || rc <= FH_ERR__LAST)
		rc = FH_ERR_INTERNAL;      /* not an fh_err: still a failure with a name */
	res->outcome = TASK_OUT_FAILED;
	res->reason = rc;
	copy(res->why, sizeof(res->why), why[0] ? why : fh_strerror(rc));
	close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, rc, res->why, cc);
	stat_add(r, &r->s.failed, 1);
}

/* Executes step k (its intent is in the journal as entry id, created at
 * created_at). recovered: an earlier process handled this intent (its POST
 * may have happened; the caller looked for its task already). */
static void exec_step(struct ijob *j, unsigned w, size_t k, uint64_t id, int64_t created_at, bool recovered,
		      struct close_ctx *cc, struct recon_result *res)
{
	struct recon *r = j->r;
	struct pve_client *c = r->wc[w];
	const struct gate_action *a = &j->steps[k];
	char upid[UPID_MAX] = "", why[256] = "";
	struct pve_err e;
	unsigned attempt;
	bool sync = false, already = false;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&e, 0, sizeof(e));
	res->jrnl_id = id;
	if (!strcmp(a->b.op, "signer_rotate")) {
		rc = close_entry(j, id, a, true, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, 0, "", cc);
		res->outcome = rc ? TASK_OUT_NONE : cc->job_outcome;
		res->reason = rc ? rc : cc->job_reason;
		if (rc)
			copy(res->why, sizeof(res->why), "could not record the rotation: left in flight");
		else if (cc->job_outcome == TASK_OUT_FAILED)
			snprintf(res->why, sizeof(res->why), "rotation refused: %s", fh_strerror(cc->job_reason));
		else
			copy(res->why, sizeof(res->why), "signer set rotated");
		stat_add(r, rc || cc->job_outcome != TASK_OUT_EXECUTED ? &r->s.failed : &r->s.executed, 1);
		return;
	}
	if (recon_host_op(a->b.op)) {
		exec_host_step(j, k, id, cc, res);
		return;
	}
	if (atomic_load(&r->blocked)) {
		res->reason = FH_ERR_BLOCKED;
		copy(res->why, sizeof(res->why), "blocked: the intent stays in flight until unblocked");
		return;
	}
	rc = mutation_enter(r);
	if (rc) {
		res->reason = rc;
		copy(res->why, sizeof(res->why), "the engine is stopping: intent left in flight");
		return;
	}
	if (a->b.has_guest) {
		rc = wait_unlocked(r, c, (int)a->b.guest_id, why, sizeof(why));
		if (rc == FH_ERR_CANCELLED) {
			res->reason = rc;
			copy(res->why, sizeof(res->why), "cancelled while waiting for the guest's lock");
			goto out;
		}
		if (rc) {
			res->outcome = TASK_OUT_FAILED;
			res->reason = rc;
			copy(res->why, sizeof(res->why), why);
			close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, rc, why, cc);
			stat_add(r, &r->s.failed, 1);
			goto out;
		}
	}
	for (attempt = 0;; attempt++) {
		bool retry = attempt > 0 || recovered;

		if (attempt > 0) {
			/* the last attempt may have reached Proxmox: adopt its task */
			if (find_task(r, c, a, created_at, upid, &e) == 0) {
				stat_add(r, &r->s.adopted, 1);
				break;
			}
			stat_add(r, &r->s.post_retries, 1);
		}
		if (atomic_load(&r->blocked) && attempt > 0) {
			res->reason = FH_ERR_BLOCKED;
			copy(res->why, sizeof(res->why), "blocked between retries: intent left in flight");
			goto out;
		}
		memset(&e, 0, sizeof(e));
		rc = post_once(c, a, upid, &sync, &e);
		stat_add(r, &r->s.posts, 1);
		if (!rc)
			break;
		if (already_done(a->b.op, &e, retry)) {
			already = true;
			break;
		}
		if (rc == FH_ERR_CANCELLED) {
			res->reason = rc;
			copy(res->why, sizeof(res->why), "cancelled: intent left in flight");
			goto out;
		}
		if (transient_of(rc, &e) == TR_NO || attempt >= r->o.post_retries) {
			res->outcome = TASK_OUT_FAILED;
			res->reason = rc;
			snprintf(res->why, sizeof(res->why), "%s", e.reason[0] ? e.reason : fh_strerror(rc));
			close_entry(j, id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, rc, res->why, cc);
			stat_add(r, &r->s.failed, 1);
			goto out;
		}
		if (nap(r, r->o.post_retry_ms << (attempt < 6 ? attempt : 6))) {
			res->reason = FH_ERR_CANCELLED;
			copy(res->why, sizeof(res->why), "cancelled: intent left in flight");
			goto out;
		}
	}
	if (upid[0]) {
		record_upid(r, id, upid);
		await_and_close(j, c, id, a, upid, attempt > 0 || recovered, cc, res);
		goto out;
	}
	/* synchronous, or already in effect */
	res->outcome = TASK_OUT_EXECUTED;
	copy(res->why, sizeof(res->why), already ? "already in effect" : "done");
	close_entry(j, id, a, true, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, 0, already ? "already in effect" : "", cc);
	stat_add(r, &r->s.executed, 1);
out:
	mutation_leave(r);
}

/* Is this the step after which nothing else of the job runs? */
static bool last_step(const struct ijob *j, size_t k, bool failed)
{
	size_t m;

	if (!failed)
		return k + 1 == j->nsteps;
	for (m = k + 1; m < j->nsteps; m++)
		if (j->flags[m] & STEP_ALWAYS)
			return false;
	return true;
}

static void resume_run(struct ijob *j, unsigned w, struct recon_result *res);

static void step_note(struct recon_result *agg, size_t k, const struct recon_result *res)
{
	struct recon_step_result *sr = &agg->steps[k];

	sr->ran = res->outcome != TASK_OUT_NONE;
	sr->outcome = res->outcome;
	sr->reason = res->reason;
	copy(sr->upid, sizeof(sr->upid), res->upid);
	copy(sr->why, sizeof(sr->why), res->why);
	if (agg->nsteps < k + 1)
		agg->nsteps = k + 1;
}

static bool cont_start(struct ijob *j, unsigned w, struct close_ctx *cc, struct recon_result *steps,
		       struct recon_result *res, struct recon_result *first_fail, bool *failed, size_t *from);
static void cont_row(struct ijob *j, size_t k, uint64_t id, const struct recon_result *res, const char *action);

static void job_run(void *arg, unsigned w)
{
	struct ijob *j = arg;
	struct recon_result res, first_fail, *steps;
	struct close_ctx cc;
	bool failed = false, have_fail = false;
	size_t k, from = 0;

	memset(&res, 0, sizeof(res));
	memset(&first_fail, 0, sizeof(first_fail));
	memset(&cc, 0, sizeof(cc));
	steps = calloc(1, sizeof(*steps));
	if (!steps) {
		res.reason = FH_ERR_NOMEM;
		goto out;
	}
	if (j->resume_id) {
		resume_run(j, w, &res);
		step_note(steps, 0, &res);
		goto out;
	}
	if (j->cont) {
		/* a multi-step job an earlier process admitted: its step in
		 * flight is resolved by the journal, then the rest runs here */
		if (!cont_start(j, w, &cc, steps, &res, &first_fail, &failed, &from))
			goto out;
		have_fail = failed;
	}
	for (k = from; k < j->nsteps; k++) {
		uint64_t id = 0;

		if (failed && !(j->flags[k] & STEP_ALWAYS)) {
			cont_row(j, k, 0, NULL, "skipped (a step failed)");
			continue;
		}
		if (admit(j, k, &id, &res) == ADMIT_DONE) {
			step_note(steps, k, &res);
			cont_row(j, k, 0, &res, res.outcome == TASK_OUT_NONE ? "not admitted, left" : "decided, not run");
			if (res.outcome == TASK_OUT_NONE || (k == 0 && res.replayed))
				break;                      /* not decided here (blocked, duplicate) or replayed */
			if (k > 0 && !j->rec)
				job_final(j, TASK_OUT_FAILED, res.reason);
			if (k > 0 && cc.job_outcome != TASK_OUT_FAILED) {
				/* a later step that runs (ALWAYS) does not make the job succeed */
				cc.job_outcome = TASK_OUT_FAILED;
				cc.job_reason = res.reason ? res.reason : FH_ERR_TASK;
			}
			if (!have_fail)
				first_fail = res;
			have_fail = failed = true;
			if (k == 0)
				break;
			continue;
		}
		cc.k = k;
		/* the entry is this job's: a resume scan leaves it alone (should
		 * the set not grow, a resume job still queues behind this one in
		 * the same lane and finds the entry closed) */
		lock(j->r);
		(void)owned_add(j->r, id);
		unlock(j->r);
		exec_step(j, w, k, id, wall_s(), false, &cc, &res);
		lock(j->r);
		owned_del(j->r, id);
		unlock(j->r);
		step_note(steps, k, &res);
		cont_row(j, k, id, &res, res.outcome == TASK_OUT_NONE ? "left in flight" : "ran, closed");
		if (res.outcome == TASK_OUT_NONE)
			break;                              /* left in flight */
		if (res.outcome != TASK_OUT_EXECUTED) {
			if (!have_fail)
				first_fail = res;
			have_fail = failed = true;
		}
	}
	if (have_fail && res.outcome != TASK_OUT_NONE) {
		uint64_t lid = res.jrnl_id;

		res = first_fail;
		if (lid)
			res.jrnl_id = lid;
	}
out:
	if (steps) {
		res.nsteps = steps->nsteps;
		memcpy(res.steps, steps->steps, sizeof(res.steps));
		free(steps);
	}
	finish(j, &res);
	ijob_free(j);
}

/* ============================================================ actions */

/* Params of an action from a JSON object text (the journal's canonical
 * params, or a hub action's). */
static int params_from_json(struct gate_action *a, const struct json *o)
{
	size_t i;
	int rc = 0;

	if (!o || o->type != JSON_OBJECT)
		return FH_ERR_DECODE;
	for (i = 0; !rc && i < o->n; i++) {
		const struct json *v = o->items[i];
		int64_t n;

		switch (v->type) {
		case JSON_STRING:
			rc = memchr(v->s, '\0', v->slen) ? FH_ERR_DECODE : gate_action_str(a, o->keys[i], v->s);
			break;
		case JSON_NUMBER:
			rc = json_int_strict(v, &n) ? FH_ERR_DECODE : gate_action_int(a, o->keys[i], n);
			break;
		case JSON_BOOL:
			rc = gate_action_bool(a, o->keys[i], v->b);
			break;
		case JSON_NULL:
			rc = gate_action_null(a, o->keys[i]);
			break;
		default:
			rc = FH_ERR_DECODE;
			break;
		}
	}
	return rc ? FH_ERR_DECODE : 0;
}

/* An action from its journaled form (op, vmid, canonical params). */
static int action_from_parts(struct recon *r, const char *op, int64_t vmid, const char *params,
			     struct gate_action *a)
{
	const struct json_limits lim = { JRNL_PARAMS_MAX + 1, 4, false };
	struct json *root = NULL;
	int rc;

	rc = gate_action_init(a, op, r->host_id, vmid > 0 ? vmid : 0);
	if (rc || !params[0])
		return rc;
	rc = json_parse(params, strlen(params), &lim, &root, NULL, 0);
	if (!rc)
		rc = params_from_json(a, root);
	json_free(root);
	return rc;
}

static int action_from_entry(struct recon *r, const struct jrnl_entry *e, struct gate_action *a)
{
	return action_from_parts(r, e->op, e->vmid, e->params, a);
}

/* ============================================================ recovery */

static bool known_has(struct recon *r, const char *upid)
{
	const char *key = upid;
	bool has;

	lock(r);
	has = recent_has_locked(r, upid) ||
	      (r->known.n && bsearch(&key, r->known.v, r->known.n, sizeof(char *), cmp_str) != NULL);
	unlock(r);
	return has;
}

static void upidset_free(struct upidset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

struct scan {
	int64_t min_created;
	int64_t *vmids;
	size_t nvmids, avmids;
	struct upidset set;
	size_t in_flight;
};

static int scan_inflight(const struct jrnl_entry *e, void *arg)
{
	struct scan *s = arg;

	s->in_flight++;
	if (!s->min_created || e->created_at < s->min_created)
		s->min_created = e->created_at;
	if (s->nvmids == s->avmids) {
		size_t na = s->avmids ? s->avmids * 2 : 64;
		int64_t *nv = realloc(s->vmids, na * sizeof(*nv));
		if (!nv)
			return FH_ERR_NOMEM;
		s->vmids = nv;
		s->avmids = na;
	}
	s->vmids[s->nvmids++] = e->vmid;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int scan_known(const struct jrnl_entry *e, void *arg)
{
	struct scan *s = arg;
	char *c;

	if (!e->upid[0] || e->created_at < s->min_created - 600 ||
	    !bsearch(&e->vmid, s->vmids, s->nvmids, sizeof(int64_t), cmp_i64))
		return 0;
	if (s->set.n == s->set.alloc) {
		size_t na = s->set.alloc ? s->set.alloc * 2 : 64;
		char **nv = realloc(s->set.v, na * sizeof(*nv));
		if (!nv)
			return FH_ERR_NOMEM;
		s->set.v = nv;
		s->set.alloc = na;
	}
	c = strdup(e->upid);
	if (!c)
		return FH_ERR_NOMEM;
	s->set.v[s->set.n++] = c;
	return 0;
}

/* The UPIDs journal entries recorded for the guests that have entries in
 * flight, from a little before the oldest of those on: a task one of them
 * recorded is never adopted by another. */
static int build_known(struct recon *r, size_t *in_flight)
{
	struct scan s;
	struct upidset old;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = jrnl_in_flight(r->st, scan_inflight, &s);
	if (!rc && s.nvmids) {
		qsort(s.vmids, s.nvmids, sizeof(int64_t), cmp_i64);
		rc = jrnl_foreach(r->st, scan_known, &s);
	}
	if (rc) {
		free(s.vmids);
		upidset_free(&s.set);
		return rc;
	}
	if (s.set.n)
		qsort(s.set.v, s.set.n, sizeof(char *), cmp_str);
	lock(r);
	old = r->known;
	r->known = s.set;
	unlock(r);
	upidset_free(&old);
	free(s.vmids);
	if (in_flight)
		*in_flight = s.in_flight;
	return 0;
}

struct rctx {
	recon_row_fn fn;
	void *arg;
	pthread_mutex_t mu;
	struct recon_recovery c;
	bool dry;
	struct recon_recovery_row last;      /* the last row emitted (dry runs read it) */
};

static void row_emit(struct rctx *x, const struct recon_recovery_row *row, size_t *counter)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	if (counter)
		(*counter)++;
	x->last = *row;
	if (x->fn)
		x->fn(row, x->arg);
	pthread_mutex_unlock(&x->mu);
}

enum rule_out { RULE_IN_EFFECT, RULE_REPOST, RULE_ABANDON, RULE_UNKNOWN };

static bool absent_err(int rc, const struct pve_err *e)
{
	return rc == FH_ERR_HTTP_5XX && strstr(e->reason, "does not exist");
}

/* The op's recovery rule for an intent whose POST never produced a task:
 * is its effect already there (close), or was it never done (post it)? */
static enum rule_out recovery_rule(struct pve_client *c, const struct gate_action *a, char *why, size_t whylen)
{
	const char *op = a->b.op;
	int vmid = a->b.has_guest ? (int)a->b.guest_id : 0;
	struct pve_guest g;
	struct pve_guest_config cfg;
	struct pve_err e;
	size_t i;
	int rc;

	if (!strcmp(op, "signer_rotate")) {
		snprintf(why, whylen, "the rotation commits with its close: run it");
		return RULE_REPOST;
	}
	if (!gate_op_known(op) || recon_host_op(op) || !strcmp(op, "disk_shrink")) {
		snprintf(why, whylen, "no recovery rule for %s", op);
		return RULE_ABANDON;
	}
	if (!strcmp(op, "backup_prune")) {
		struct pve_content *vols = NULL;
		size_t nv = 0;
		bool there = false;

		if (!p_str(a, "storage") || !p_str(a, "volid")) {
			snprintf(why, whylen, "backup_prune without storage and volid");
			return RULE_ABANDON;
		}
		rc = pve_storage_content(c, p_str(a, "storage"), NULL, &vols, &nv, &e);
		if (rc) {
			snprintf(why, whylen, "storage %.64s content: %s", p_str(a, "storage"), fh_strerror(rc));
			return RULE_UNKNOWN;
		}
		for (i = 0; i < nv && !there; i++)
			there = !strcmp(vols[i].volid, p_str(a, "volid"));
		free(vols);
		snprintf(why, whylen, there ? "volume still in the storage" : "volume gone from the storage");
		return there ? RULE_REPOST : RULE_IN_EFFECT;
	}
	if (!vmid) {
		snprintf(why, whylen, "never posted");
		return RULE_REPOST;
	}
	rc = pve_guest_status(c, vmid, &g, &e);
	if (rc && !absent_err(rc, &e)) {
		snprintf(why, whylen, "guest %d status: %s", vmid, fh_strerror(rc));
		return RULE_UNKNOWN;
	}
	if (!strcmp(op, "destroy")) {
		snprintf(why, whylen, rc ? "guest gone" : "guest still there");
		return rc ? RULE_IN_EFFECT : RULE_REPOST;
	}
	if (!strcmp(op, "restore") && !p_bool(a, "force")) {
		snprintf(why, whylen, rc ? "guest not there" : "guest exists");
		return rc ? RULE_REPOST : RULE_IN_EFFECT;
	}
	if (rc) {
		snprintf(why, whylen, "guest %d does not exist", vmid);
		return RULE_ABANDON;
	}
	if (!strcmp(op, "start") || !strcmp(op, "stop") || !strcmp(op, "shutdown")) {
		bool want = !strcmp(op, "start"), running = !strcmp(g.status, "running");

		snprintf(why, whylen, "guest is %s", g.status[0] ? g.status : "unknown");
		return running == want ? RULE_IN_EFFECT : RULE_REPOST;
	}
	if (!strcmp(op, "set_config") || !strcmp(op, "snapshot")) {
		bool same = true;

		rc = pve_guest_config(c, vmid, &cfg, &e);
		if (rc) {
			snprintf(why, whylen, "guest %d config: %s", vmid, fh_strerror(rc));
			return RULE_UNKNOWN;
		}
		if (!strcmp(op, "snapshot")) {
			const char *parent = pve_guest_config_get(&cfg, "parent");
			same = parent && p_str(a, "name") && !strcmp(parent, p_str(a, "name"));
		}
		for (i = 0; same && !strcmp(op, "set_config") && i < a->b.nparams; i++) {
			const struct opblob_param *p = &a->b.params[i];
			const char *have;
			char want[1024];

			if (!strcmp(p->key, "digest"))
				continue;
			if (!strcmp(p->key, "delete")) {
				same = false;    /* cannot tell cheaply: delete is idempotent, post it */
				continue;
			}
			p_text(p, want, sizeof(want));
			have = pve_guest_config_get(&cfg, p->key);
			if (!strcmp(p->key, "description")) {
				char x[RECON_DESCRIPTION_MAX + 1], y[RECON_DESCRIPTION_MAX + 1];

				recon_norm_description(want, x, sizeof(x));
				recon_norm_description(have ? have : "", y, sizeof(y));
				same = !strcmp(x, y);
			} else {
				same = have && !strcmp(have, want);
			}
		}
		pve_guest_config_free(&cfg);
		snprintf(why, whylen, same ? "config already as wanted" : "config differs");
		return same ? RULE_IN_EFFECT : RULE_REPOST;
	}
	/* rollback, delete_snapshot, vzdump, restore --force: no task means
	 * it never ran; "does not exist" on the re-post counts as done */
	snprintf(why, whylen, "never posted");
	return RULE_REPOST;
}

/* Waits for this agent's imgdel tasks on the prune's VMID@STORAGE that
 * started after since and that no journal entry recorded (a lost DELETE's
 * task may still run). Errors are left to the volume check that follows;
 * FH_ERR_CANCELLED when the engine stops. */
static int settle_imgdel(struct recon *r, struct pve_client *c, const struct gate_action *a, int64_t since)
{
	struct pve_task_entry *ts = NULL;
	struct pve_task_result tr;
	struct pve_err pe;
	char idbuf[96];
	size_t n = 0, i;
	int rc = 0;

	if (!p_str(a, "storage") ||
	    (size_t)snprintf(idbuf, sizeof(idbuf), "%" PRId64 "@%s", a->b.has_guest ? a->b.guest_id : 0,
			     p_str(a, "storage")) >= sizeof(idbuf))
		return 0;
	if (pve_list_tasks(c, 0, since > 2 ? since - 2 : 0, &ts, &n, &pe))
		return 0;
	for (i = 0; i < n && rc != FH_ERR_CANCELLED; i++) {
		struct upid u;

		if (ts[i].status[0] || upid_parse(ts[i].upid, strlen(ts[i].upid), &u, NULL) || strcmp(u.type, "imgdel") ||
		    strcmp(u.user, r->token_id) || strcmp(u.id, idbuf) || known_has(r, ts[i].upid))
			continue;
		memset(&pe, 0, sizeof(pe));
		rc = pve_task_wait(c, ts[i].upid, &tr, &pe);
	}
	free(ts);
	return rc == FH_ERR_CANCELLED ? rc : 0;
}

static void row_init(struct recon_recovery_row *row, const struct jrnl_entry *e)
{
	memset(row, 0, sizeof(*row));
	row->id = e->id;
	copy(row->job_id, sizeof(row->job_id), e->job_id);
	copy(row->op, sizeof(row->op), e->op);
	row->vmid = e->vmid;
	row->state = e->state;
	copy(row->upid, sizeof(row->upid), e->upid);
}

/* Resolves one in-flight entry. Dry run (j NULL): looks and reports only.
 * Otherwise on worker w as step k of job j (cc: the job so far): closes,
 * awaits or re-posts. */
static void resolve(struct recon *r, struct pve_client *c, const struct jrnl_entry *e, struct ijob *j, unsigned w,
		    size_t k, struct close_ctx *ccp, struct rctx *x, struct recon_result *res)
{
	bool dry = j == NULL;
	struct recon_recovery_row row;
	struct gate_action *a = NULL, tmp;
	struct pve_task_status ts;
	struct close_ctx cc0, *cc = ccp ? ccp : &cc0;
	struct pve_err pe;
	char upid[UPID_MAX] = "", why[160] = "";
	bool adopted = false;
	size_t *counter = NULL;
	enum rule_out rule;
	int rc;

	row_init(&row, e);
	memset(&cc0, 0, sizeof(cc0));
	cc->k = k;
	memset(res, 0, sizeof(*res));
	res->jrnl_id = e->id;
	if (j) {
		a = &j->steps[k];
	} else {
		a = &tmp;
		if (action_from_entry(r, e, a)) {
			row.found = "params unreadable";
			row.action = "would roll back";
			row_emit(x, &row, x ? &x->c.left : NULL);
			return;
		}
	}
	if (recon_host_op(e->op)) {
		/* never re-run automatically: an operator signs it again */
		row.found = e->state == TASK_INTENT ? "host op, not handed over" : "host op, handed over";
		row.outcome = TASK_OUT_FAILED;
		copy(row.detail, sizeof(row.detail), "interrupted: host ops are never re-run");
		if (dry) {
			row.action = "would close failed";
			row_emit(x, &row, x ? &x->c.left : NULL);
			return;
		}
		rc = close_entry(j, e->id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, FH_ERR_INTERRUPTED,
				 "interrupted: host ops are never re-run; sign again to retry", cc);
		row.action = rc ? "left in flight (store)" : "closed failed (interrupted)";
		res->outcome = rc ? TASK_OUT_NONE : TASK_OUT_FAILED;
		res->reason = rc ? rc : FH_ERR_INTERRUPTED;
		row_emit(x, &row, x ? (rc ? &x->c.left : &x->c.closed) : NULL);
		return;
	}
	copy(upid, sizeof(upid), e->upid);
	if (!upid[0] && !strcmp(e->op, "backup_prune")) {
		/* an imgdel worker is named VMID@STORAGE, not by its volume: a
		 * task cannot be told to be this prune's, so none is adopted;
		 * this agent's unrecorded ones are let finish, then the
		 * volume decides (recovery_rule) */
		row.found = "no task adopted (the volume decides)";
		if (!dry && settle_imgdel(r, c, a, e->created_at) == FH_ERR_CANCELLED) {
			row.action = "left in flight";
			res->reason = FH_ERR_CANCELLED;
			row_emit(x, &row, x ? &x->c.left : NULL);
			return;
		}
	} else if (!upid[0] && recon_task_type(e->op)) {
		rc = find_task(r, c, a, e->created_at, upid, &pe);
		if (rc && rc != FH_ERR_NOT_FOUND) {
			row.found = "task list unreadable";
			row.action = dry ? "would retry" : "left in flight";
			snprintf(row.detail, sizeof(row.detail), "%s", fh_strerror(rc));
			res->reason = rc;
			row_emit(x, &row, x ? &x->c.left : NULL);
			return;
		}
		if (!rc) {
			adopted = true;
			copy(row.upid, sizeof(row.upid), upid);
		}
	}
	if (upid[0]) {
		memset(&pe, 0, sizeof(pe));
		rc = pve_task_status(c, upid, &ts, &pe);
		if (!rc && !strcmp(ts.status, "stopped")) {
			bool ok = !strcmp(ts.exitstatus, "OK") || !strncmp(ts.exitstatus, "WARNINGS", 8);
			struct pve_err fe;

			memset(&fe, 0, sizeof(fe));
			copy(fe.exitstatus, sizeof(fe.exitstatus), ts.exitstatus);
			if (!ok && already_done(e->op, &fe, true))
				ok = true;
			row.found = adopted ? "task adopted, stopped" : "task stopped";
			row.outcome = ok ? TASK_OUT_EXECUTED : TASK_OUT_FAILED;
			copy(row.detail, sizeof(row.detail), ts.exitstatus);
			if (dry) {
				row.action = "would close";
				row_emit(x, &row, x ? &x->c.left : NULL);
				return;
			}
			if (adopted) {
				record_upid(r, e->id, upid);
				stat_add(r, &r->s.adopted, 1);
			}
			rc = close_entry(j, e->id, a, false, ok ? TASK_EV_SUCCEEDED : TASK_EV_FAILED,
					 ok ? TASK_OUT_EXECUTED : TASK_OUT_FAILED, ok ? 0 : FH_ERR_TASK, ts.exitstatus, cc);
			row.action = rc ? "left in flight (store)" : "closed";
			res->outcome = rc ? TASK_OUT_NONE : row.outcome;
			copy(res->upid, sizeof(res->upid), upid);
			if (x) {
				pthread_mutex_lock(&x->mu);
				x->c.adopted += adopted;
				pthread_mutex_unlock(&x->mu);
			}
			row_emit(x, &row, x ? (rc ? &x->c.left : &x->c.closed) : NULL);
			return;
		}
		if (!rc) {
			row.found = adopted ? "task adopted, running" : "task running";
			if (dry) {
				row.action = "would await";
				row_emit(x, &row, x ? &x->c.left : NULL);
				return;
			}
			if (adopted) {
				record_upid(r, e->id, upid);
				stat_add(r, &r->s.adopted, 1);
			}
			await_and_close(j, c, e->id, a, upid, true, cc, res);
			row.outcome = res->outcome;
			row.action = res->outcome == TASK_OUT_NONE ? "left in flight" : "awaited, closed";
			copy(row.detail, sizeof(row.detail), res->why);
			if (x) {
				pthread_mutex_lock(&x->mu);
				x->c.adopted += adopted;
				pthread_mutex_unlock(&x->mu);
			}
			row_emit(x, &row, x ? (res->outcome == TASK_OUT_NONE ? &x->c.left : &x->c.awaited) : NULL);
			return;
		}
		if (!(rc == FH_ERR_HTTP_4XX && strstr(pe.reason, "no such task"))) {
			row.found = "task status unreadable";
			row.action = dry ? "would retry" : "left in flight";
			snprintf(row.detail, sizeof(row.detail), "%s", fh_strerror(rc));
			res->reason = rc;
			row_emit(x, &row, x ? &x->c.left : NULL);
			return;
		}
		/* Proxmox does not know the task: fall back to the op's rule */
		row.found = "task unknown to Proxmox";
	} else if (!row.found) {
		row.found = recon_task_type(e->op) ? "no task" : "no task (synchronous op)";
	}
	rule = recovery_rule(c, a, why, sizeof(why));
	if (rule == RULE_REPOST && e->upid[0]) {
		/* it was posted once: never dispatched again, whatever Proxmox forgot */
		rule = RULE_ABANDON;
		copy(why, sizeof(why), "posted before, task unknown to Proxmox: not re-posted");
	}
	switch (rule) {
	case RULE_IN_EFFECT:
		copy(row.detail, sizeof(row.detail), why);
		row.outcome = TASK_OUT_EXECUTED;
		if (dry) {
			row.action = "would close (in effect)";
			counter = x ? &x->c.left : NULL;
			break;
		}
		rc = close_entry(j, e->id, a, true, TASK_EV_SUCCEEDED, TASK_OUT_EXECUTED, 0, "in effect (recovered)", cc);
		row.action = rc ? "left in flight (store)" : "closed (in effect)";
		res->outcome = rc ? TASK_OUT_NONE : TASK_OUT_EXECUTED;
		counter = x ? (rc ? &x->c.left : &x->c.closed) : NULL;
		break;
	case RULE_REPOST:
		copy(row.detail, sizeof(row.detail), why);
		if (dry) {
			row.action = "would re-post";
			counter = x ? &x->c.left : NULL;
			break;
		}
		exec_step(j, w, k, e->id, e->created_at, true, cc, res);
		row.outcome = res->outcome;
		copy(row.upid, sizeof(row.upid), res->upid);
		row.action = res->outcome == TASK_OUT_NONE ? "left in flight" : "re-posted, closed";
		if (res->outcome == TASK_OUT_NONE)
			copy(row.detail, sizeof(row.detail), res->why);
		counter = x ? (res->outcome == TASK_OUT_NONE ? &x->c.left : &x->c.reposted) : NULL;
		break;
	case RULE_ABANDON:
		copy(row.detail, sizeof(row.detail), why);
		row.outcome = TASK_OUT_FAILED;
		if (dry) {
			row.action = e->upid[0] ? "would close failed" : "would roll back";
			counter = x ? &x->c.left : NULL;
			break;
		}
		if (e->upid[0])
			rc = close_entry(j, e->id, a, false, TASK_EV_FAILED, TASK_OUT_FAILED, FH_ERR_NOT_FOUND, why, cc);
		else
			rc = close_entry(j, e->id, a, false, TASK_EV_ROLLED_BACK, TASK_OUT_FAILED, FH_ERR_UNSUPPORTED, why,
					 cc);
		row.action = rc ? "left in flight (store)" : e->upid[0] ? "closed failed" : "rolled back";
		res->outcome = rc ? TASK_OUT_NONE : TASK_OUT_FAILED;
		counter = x ? (rc ? &x->c.left : &x->c.closed) : NULL;
		break;
	case RULE_UNKNOWN:
	default:
		copy(row.detail, sizeof(row.detail), why);
		row.action = dry ? "would retry" : "left in flight";
		counter = x ? &x->c.left : NULL;
		break;
	}
	row_emit(x, &row, counter);
}

static struct rctx *rctx_of(const struct ijob *j)
{
	return j->done == NULL && j->done_arg ? j->done_arg : NULL;
}

static void resume_run(struct ijob *j, unsigned w, struct recon_result *res)
{
	struct recon *r = j->r;
	struct jrnl_entry *e = malloc(sizeof(*e));
	struct rctx *x = rctx_of(j);
	int rc;

	memset(res, 0, sizeof(*res));
	if (!e) {
		res->reason = FH_ERR_NOMEM;
		return;
	}
	rc = jrnl_get(r->st, j->resume_id, e);
	if (rc || task_state_terminal(e->state)) {
		res->reason = rc;
		free(e);
		return;
	}
	if (atomic_load(&r->blocked) && !e->upid[0]) {
		struct recon_recovery_row row;

		row_init(&row, e);
		row.found = "blocked";
		row.action = "left in flight";
		row_emit(x, &row, x ? &x->c.left : NULL);
		res->reason = FH_ERR_BLOCKED;
		free(e);
		return;
	}
	resolve(r, r->wc[w], e, j, w, 0, NULL, x, res);
	free(e);
}

/* ---- multi-step jobs (jrnl.h job records) ---- */

/* The idempotency key and op id of a job from its journal job id and
 * source, as a job is submitted (the planner's have no key). */
static void job_keys(enum jrnl_source src, const char *jkey, const char *op_id, char *key, size_t keylen,
		     char *op, size_t oplen)
{
	copy(key, keylen, src != JRNL_SRC_DESIRED ? jkey : "");
	if (op_id)
		copy(op, oplen, op_id);
	else
		copy(op, oplen, !strncmp(jkey, "op:", 3) ? jkey + 3 : "");
}

/* Closes job id failed without running anything more of it: its record
 * does not decode, or disagrees with the journal. One transaction: the
 * idempotency outcome (when still executing), the op result, the record
 * deleted. The key and op id come from the first step's entry (the record
 * cannot be trusted); rec, when readable, gives the op id. Its entries
 * still in flight are resolved alone (no_final). The job's journal job id
 * goes to jkey (cap n; "" when unknown). */
static int close_bad_job(struct recon *r, uint64_t id, const struct jrnl_job *rec, struct rctx *x, const char *why,
			 char *jkey, size_t n)
{
	struct jrnl_entry *e = malloc(sizeof(*e));
	struct recon_recovery_row row;
	struct store_txn *t = NULL;
	struct idem_rec ir;
	char key[RECON_JOB_ID_MAX + 1] = "", op[129] = "";
	bool have = false;
	int rc;

	if (!e)
		return FH_ERR_NOMEM;
	jkey[0] = '\0';
	memset(&row, 0, sizeof(row));
	row.id = id;
	row.state = TASK_QUEUED;
	row.vmid = JRNL_NO_VMID;
	copy(row.op, sizeof(row.op), "job");
	if (jrnl_get(r->st, id, e) == 0) {
		have = true;
		job_keys(e->source, e->job_id, rec ? rec->op_id : NULL, key, sizeof(key), op, sizeof(op));
		copy(jkey, n, e->job_id);
		copy(row.job_id, sizeof(row.job_id), e->job_id);
		copy(row.op, sizeof(row.op), e->op);
		row.vmid = e->vmid;
	}
	rc = store_txn_begin(r->st, true, &t);
	if (!rc && have && key[0] && idem_lookup(t, key, &ir) == 0 && ir.outcome == TASK_OUT_NONE)
		rc = idem_set_outcome(t, key, TASK_OUT_FAILED, reason_name(FH_ERR_DECODE), 0);
	if (!rc && op[0])
		rc = outbox_put(t, op, TASK_OUT_FAILED, reason_name(FH_ERR_DECODE));
	if (!rc) {
		rc = jrnl_job_del(t, id);
		if (rc == FH_ERR_NOT_FOUND)
			rc = 0;
	}
	if (t) {
		if (rc)
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	if (!rc && op[0])
		notify_result(r);
	row.found = "job record unreadable";
	row.action = rc ? "left (store)" : "job closed failed";
	row.outcome = rc ? TASK_OUT_NONE : TASK_OUT_FAILED;
	snprintf(row.detail, sizeof(row.detail), "%s%s%s", why, rc ? ": " : "", rc ? fh_strerror(rc) : "");
	if (x) {
		pthread_mutex_lock(&x->mu);
		x->c.jobs_failed += !rc;
		pthread_mutex_unlock(&x->mu);
	}
	row_emit(x, &row, NULL);
	free(e);
	return rc;
}

/* Rebuilds job j from its record (taken over: j->rec). FH_ERR_DECODE when
 * a step does not make an action of this host's lane. */
static int job_from_rec(struct ijob *j, struct jrnl_job *rec)
{
	struct recon *r = j->r;
	size_t i;

	j->rec = rec;
	j->source = rec->source;
	copy(j->jkey, sizeof(j->jkey), rec->job_id);
	job_keys(rec->source, rec->job_id, rec->op_id, j->job_id, sizeof(j->job_id), j->op_id, sizeof(j->op_id));
	copy(j->pending_key, sizeof(j->pending_key), j->job_id);
	j->idem_exp = rec->idem_expires_at;
	if (rec->nsteps < 1 || rec->nsteps > RECON_STEPS_MAX)
		return FH_ERR_DECODE;
	j->nsteps = rec->nsteps;
	for (i = 0; i < rec->nsteps; i++) {
		const struct jrnl_job_step *st = &rec->steps[i];

		if (st->vmid != rec->steps[0].vmid || action_from_parts(r, st->op, st->vmid, st->params, &j->steps[i]))
			return FH_ERR_DECODE;
		j->flags[i] = (st->flags & JRNL_F__ALL) | ((st->flags & JRNL_JOB_STEP_ALWAYS) ? STEP_ALWAYS : 0);
		j->step_ids[i] = st->entry_id;
	}
	return 0;
}

/* The start of a continuation: loads the record, resolves the step in
 * flight (by the journal: never dispatched again once posted) and says
 * where the loop goes on (*from) and whether the job has failed. false:
 * nothing more runs now (res says why). */
static bool cont_start(struct ijob *j, unsigned w, struct close_ctx *cc, struct recon_result *steps,
		       struct recon_result *res, struct recon_result *first_fail, bool *failed, size_t *from)
{
	struct recon *r = j->r;
	struct rctx *x = rctx_of(j);
	struct jrnl_job *rec = malloc(sizeof(*rec));
	struct jrnl_entry *e = NULL;
	char jk[RECON_JOB_ID_MAX + 1];
	const char *bad = NULL;
	size_t k;
	int rc;

	if (!rec) {
		res->reason = FH_ERR_NOMEM;
		return false;
	}
	rc = jrnl_job_get(r->st, j->rec_id, rec);
	if (rc == FH_ERR_NOT_FOUND) {
		free(rec);                /* finished meanwhile */
		return false;
	}
	if (rc == FH_ERR_DECODE) {
		free(rec);
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_DECODE;
		close_bad_job(r, j->rec_id, NULL, x, "the job record does not decode", jk, sizeof(jk));
		return false;
	}
	if (rc) {
		free(rec);
		res->reason = rc;
		return false;
	}
	if (job_from_rec(j, rec)) {
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_DECODE;
		close_bad_job(r, j->rec_id, rec, x, "a step of the job record is not an action of this host", jk,
			      sizeof(jk));
		return false;
	}
	cc->job_outcome = rec->outcome;
	cc->job_reason = rec->reason;
	*failed = rec->outcome == TASK_OUT_FAILED;
	if (*failed) {
		memset(first_fail, 0, sizeof(*first_fail));
		first_fail->outcome = TASK_OUT_FAILED;
		first_fail->reason = rec->reason;
		copy(first_fail->why, sizeof(first_fail->why), "an earlier step failed (before the restart)");
	}
	k = rec->cur;
	*from = k;
	if (!rec->steps[k].entry_id)
		return true;              /* between two steps: k is the next to admit */
	e = malloc(sizeof(*e));
	if (!e) {
		res->reason = FH_ERR_NOMEM;
		return false;
	}
	rc = jrnl_get(r->st, rec->steps[k].entry_id, e);
	if (rc == FH_ERR_NOT_FOUND || rc == FH_ERR_DECODE || (!rc && task_state_terminal(e->state)))
		bad = "the job record disagrees with the journal";
	else if (!rc && (e->vmid != rec->steps[k].vmid || strcmp(e->op, rec->steps[k].op) ||
			 strcmp(e->job_id, rec->job_id)))
		bad = "the job's step in flight is another operation";
	if (bad) {
		res->outcome = TASK_OUT_FAILED;
		res->reason = FH_ERR_DECODE;
		close_bad_job(r, j->rec_id, rec, x, bad, jk, sizeof(jk));
		free(e);
		return false;
	}
	if (rc) {
		res->reason = rc;
		free(e);
		return false;
	}
	if (atomic_load(&r->blocked) && !e->upid[0]) {
		struct recon_recovery_row row;

		row_init(&row, e);
		row.found = "blocked";
		row.action = "left in flight";
		row_emit(x, &row, x ? &x->c.left : NULL);
		res->reason = FH_ERR_BLOCKED;
		free(e);
		return false;
	}
	/* the entry is this job's while it is resolved */
	lock(r);
	rc = owned_add(r, e->id);
	unlock(r);
	resolve(r, r->wc[w], e, j, w, k, cc, x, res);
	if (!rc) {
		lock(r);
		owned_del(r, e->id);
		unlock(r);
	}
	free(e);
	step_note(steps, k, res);
	if (res->outcome == TASK_OUT_NONE)
		return false;             /* still in flight: the record stays */
	if (res->outcome != TASK_OUT_EXECUTED) {
		if (!*failed)
			*first_fail = *res;
		*failed = true;
	}
	*from = k + 1;
	return true;
}

/* One recovery row for step k of a continuation (nothing outside
 * recovery). */
static void cont_row(struct ijob *j, size_t k, uint64_t id, const struct recon_result *res, const char *action)
{
	struct rctx *x = j->cont ? rctx_of(j) : NULL;
	struct recon_recovery_row row;
	size_t *counter = NULL;

	if (!x)
		return;
	memset(&row, 0, sizeof(row));
	row.id = id;
	copy(row.job_id, sizeof(row.job_id), j->jkey);
	copy(row.op, sizeof(row.op), j->steps[k].b.op);
	row.vmid = j->steps[k].b.has_guest ? j->steps[k].b.guest_id : JRNL_NO_VMID;
	row.state = TASK_QUEUED;
	row.found = "continuation";
	row.action = action;
	if (res) {
		row.outcome = res->outcome;
		copy(row.upid, sizeof(row.upid), res->upid);
	}
	snprintf(row.detail, sizeof(row.detail), "step %zu/%zu of job %" PRIu64 "%s%.120s", k + 1, j->nsteps,
		 j->rec_id, res && res->why[0] ? ": " : "", res ? res->why : "");
	if (id && res && res->outcome != TASK_OUT_NONE)
		counter = &x->c.continued;
	else if (id)
		counter = &x->c.left;
	row_emit(x, &row, counter);
}

/* ---- the recovery scan ---- */

struct jobref {
	uint64_t id;                 /* the job record's id */
	uint64_t entry;              /* its step in flight, 0 between steps */
	int64_t lane;
	bool bad;                    /* the record does not decode */
	enum task_outcome pred;      /* dry run: what the step in flight would come to */
};

struct enq {
	struct recon *r;
	struct rctx *x;
	int rc;
	size_t n;
	struct jobref *jobs;
	size_t njobs, ajobs;
	uint64_t *entries;           /* sorted: entries in flight that belong to open jobs */
	size_t nentries;
	char (*bad_keys)[RECON_JOB_ID_MAX + 1];   /* journal job ids of jobs closed failed */
	size_t nbad;
};

static void enq_free(struct enq *q)
{
	free(q->jobs);
	free(q->entries);
	free(q->bad_keys);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int collect_job(uint64_t id, const struct jrnl_job *jb, int rc, void *arg)
{
	struct enq *q = arg;
	struct jobref *jr;

	(void)rc;
	if (q->njobs == q->ajobs) {
		size_t na = q->ajobs ? q->ajobs * 2 : 16;
		struct jobref *nv = realloc(q->jobs, na * sizeof(*nv));

		if (!nv)
			return FH_ERR_NOMEM;
		q->jobs = nv;
		q->ajobs = na;
	}
	jr = &q->jobs[q->njobs++];
	memset(jr, 0, sizeof(*jr));
	jr->id = id;
	jr->bad = jb == NULL;
	if (jb) {
		jr->entry = jb->steps[jb->cur].entry_id;
		jr->lane = jb->steps[0].vmid > 0 ? jb->steps[0].vmid : 0;
	}
	return 0;
}

/* Reads the open jobs into q: the job list and the sorted set of their
 * entries in flight. */
static int collect_jobs(struct recon *r, struct enq *q)
{
	size_t i;
	int rc = jrnl_jobs_open(r->st, collect_job, q);

	if (rc)
		return rc;
	if (!q->njobs)
		return 0;
	q->entries = calloc(q->njobs, sizeof(*q->entries));
	q->bad_keys = calloc(q->njobs, sizeof(*q->bad_keys));
	if (!q->entries || !q->bad_keys)
		return FH_ERR_NOMEM;
	for (i = 0; i < q->njobs; i++)
		if (!q->jobs[i].bad && q->jobs[i].entry)
			q->entries[q->nentries++] = q->jobs[i].entry;
	qsort(q->entries, q->nentries, sizeof(uint64_t), cmp_u64);
	if (q->x) {
		pthread_mutex_lock(&q->x->mu);
		q->x->c.jobs += q->njobs;
		pthread_mutex_unlock(&q->x->mu);
	}
	return 0;
}

static bool job_entry(const struct enq *q, uint64_t id)
{
	return q->nentries && bsearch(&id, q->entries, q->nentries, sizeof(uint64_t), cmp_u64) != NULL;
}

static bool bad_key(const struct enq *q, const char *jkey)
{
	size_t i;

	for (i = 0; jkey[0] && i < q->nbad; i++)
		if (!strcmp(q->bad_keys[i], jkey))
			return true;
	return false;
}

/* Submits a recovery job, waiting for room: every entry and job is
 * resolved, none is refused. 0 or the submit error. */
static int submit_waiting(struct recon *r, struct ijob *j)
{
	int rc;

	while ((rc = recon_queue_submit(r->q, j->lane, job_run, job_drop, j)) == FH_ERR_QUEUE_FULL &&
	       !atomic_load(&r->stopping)) {
		struct timespec ts = { 0, 5 * 1000000L };

		nanosleep(&ts, NULL);
	}
	return rc;
}

static void enq_failed(struct enq *q, int rc)
{
	q->rc = q->rc ? q->rc : rc;
	if (q->x) {
		pthread_mutex_lock(&q->x->mu);
		q->x->c.left++;
		pthread_mutex_unlock(&q->x->mu);
	}
}

static int enqueue_resume(const struct jrnl_entry *e, void *arg)
{
	struct enq *q = arg;
	struct recon *r = q->r;
	struct ijob *j;
	int rc;

	if (job_entry(q, e->id))
		return 0;                 /* its job's continuation resolves it */
	j = calloc(1, sizeof(*j));
	if (!j)
		return FH_ERR_NOMEM;
	j->r = r;
	j->source = e->source;
	j->nsteps = 1;
	j->steps = malloc(sizeof(*j->steps));
	if (!j->steps || action_from_entry(r, e, &j->steps[0])) {
		/* unreadable params: roll it back without Proxmox */
		if (j->steps)
			rc = gate_action_init(&j->steps[0], e->op, r->host_id, e->vmid > 0 ? e->vmid : 0);
		else
			rc = FH_ERR_NOMEM;
		if (rc) {
			ijob_free(j);
			return rc == FH_ERR_NOMEM ? rc : 0;
		}
	}
	copy(j->jkey, sizeof(j->jkey), e->job_id);
	job_keys(e->source, e->job_id, NULL, j->job_id, sizeof(j->job_id), j->op_id, sizeof(j->op_id));
	/* a step of a job closed failed for its unreadable record: only the
	 * entry is closed, the job's outcome stands */
	j->no_final = bad_key(q, e->job_id);
	j->lane = e->vmid > 0 ? e->vmid : 0;
	j->resume_id = e->id;
	j->done_arg = q->x;       /* the recovery context (done stays NULL) */
	lock(r);
	rc = owned_has(r, e->id) ? FH_ERR_DUPLICATE : owned_add(r, e->id);
	unlock(r);
	if (rc) {
		ijob_free(j);
		return rc == FH_ERR_DUPLICATE ? 0 : rc;
	}
	rc = submit_waiting(r, j);
	if (rc) {
		lock(r);
		owned_del(r, e->id);
		unlock(r);
		ijob_free(j);
		enq_failed(q, rc);
		return 0;
	}
	q->n++;
	return 0;
}

/* Queues the continuation of open job jr. */
static int enqueue_cont(struct enq *q, const struct jobref *jr)
{
	struct recon *r = q->r;
	struct ijob *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return FH_ERR_NOMEM;
	j->r = r;
	j->steps = calloc(RECON_STEPS_MAX, sizeof(*j->steps));
	if (!j->steps) {
		ijob_free(j);
		return FH_ERR_NOMEM;
	}
	j->cont = true;
	j->rec_id = jr->id;
	j->lane = jr->lane;
	j->done_arg = q->x;
	lock(r);
	rc = owned_has(r, jr->id) ? FH_ERR_DUPLICATE : owned_add(r, jr->id);
	unlock(r);
	if (rc) {
		j->rec_id = 0;            /* not ours to release */
		ijob_free(j);
		return rc == FH_ERR_DUPLICATE ? 0 : rc;   /* running in this process */
	}
	rc = submit_waiting(r, j);
	if (rc) {
		lock(r);
		owned_del(r, jr->id);
		unlock(r);
		ijob_free(j);
		enq_failed(q, rc);
		return 0;
	}
	q->n++;
	return 0;
}

/* The open jobs and the entries in flight: jobs whose record is unreadable
 * are closed failed at once, every other job is continued, every entry
 * that no job continues is resolved alone. Queued, not waited for. */
static int recover_enqueue(struct recon *r, struct enq *q)
{
	size_t i;
	int rc = collect_jobs(r, q);

	for (i = 0; !rc && i < q->njobs; i++) {
		if (!q->jobs[i].bad)
			continue;
		rc = close_bad_job(r, q->jobs[i].id, NULL, q->x, "the job record does not decode", q->bad_keys[q->nbad],
				   sizeof(q->bad_keys[0]));
		if (rc) {
			enq_failed(q, rc);
			rc = 0;
		} else if (q->bad_keys[q->nbad][0]) {
			q->nbad++;
		}
	}
	if (!rc)
		rc = jrnl_in_flight(r->st, enqueue_resume, q);
	for (i = 0; !rc && i < q->njobs; i++)
		if (!q->jobs[i].bad)
			rc = enqueue_cont(q, &q->jobs[i]);
	return rc;
}

int recon_resume(struct recon *r)
{
	struct enq q;
	int rc;

	if (atomic_load(&r->blocked))
		return FH_ERR_BLOCKED;
	rc = build_known(r, NULL);
	if (rc)
		return rc;
	memset(&q, 0, sizeof(q));
	q.r = r;
	rc = recover_enqueue(r, &q);
	enq_free(&q);
	return rc ? rc : q.rc;
}

struct dry {
	struct recon *r;
	struct rctx *x;
	struct enq *q;
};

static int dry_one(const struct jrnl_entry *e, void *arg)
{
	struct dry *d = arg;
	struct recon_result res;
	size_t i;

	resolve(d->r, d->r->main, e, NULL, 0, 0, NULL, d->x, &res);
	for (i = 0; i < d->q->njobs; i++)
		if (!d->q->jobs[i].bad && d->q->jobs[i].entry == e->id)
			d->q->jobs[i].pred = d->x->last.id == e->id ? d->x->last.outcome : TASK_OUT_NONE;
	return 0;
}

/* Dry run: the rows of what the continuation of job jr would run. */
static int dry_job(struct recon *r, struct rctx *x, const struct jobref *jr)
{
	struct jrnl_job *rec;
	struct recon_recovery_row row;
	size_t m, from;
	bool failed, unsure, runs;
	int rc;

	memset(&row, 0, sizeof(row));
	row.id = jr->id;
	row.state = TASK_QUEUED;
	if (jr->bad) {
		copy(row.op, sizeof(row.op), "job");
		row.vmid = JRNL_NO_VMID;
		row.found = "job record unreadable";
		row.action = "would close the job failed";
		row.outcome = TASK_OUT_FAILED;
		copy(row.detail, sizeof(row.detail), "the job record does not decode");
		row_emit(x, &row, NULL);
		return 0;
	}
	rec = malloc(sizeof(*rec));
	if (!rec)
		return FH_ERR_NOMEM;
	rc = jrnl_job_get(r->st, jr->id, rec);
	if (rc) {
		free(rec);
		return rc == FH_ERR_NOT_FOUND ? 0 : rc;
	}
	failed = rec->outcome == TASK_OUT_FAILED || (jr->entry && jr->pred == TASK_OUT_FAILED);
	unsure = jr->entry && jr->pred == TASK_OUT_NONE;
	from = jr->entry ? rec->cur + 1 : rec->cur;
	for (m = from; m < rec->nsteps; m++) {
		bool always = (rec->steps[m].flags & JRNL_JOB_STEP_ALWAYS) != 0;

		row.id = 0;
		copy(row.job_id, sizeof(row.job_id), rec->job_id);
		copy(row.op, sizeof(row.op), rec->steps[m].op);
		row.vmid = rec->steps[m].vmid;
		row.found = "continuation";
		runs = !failed || always;
		if (!runs)
			row.action = "would skip (a step failed)";
		else if (always && (failed || unsure))
			row.action = "would run (always)";
		else
			row.action = "would run";
		snprintf(row.detail, sizeof(row.detail), "step %zu/%zu of job %" PRIu64 "%s", m + 1, rec->nsteps, jr->id,
			 unsure && !failed && !always ? ": if the step in flight succeeds" : "");
		row_emit(x, &row, runs ? &x->c.continued : NULL);
	}
	free(rec);
	return 0;
}

int recon_recover(struct recon *r, bool dry_run, recon_row_fn row, void *arg, struct recon_recovery *out)
{
	struct rctx x;
	struct enq q;
	size_t inflight = 0, i;
	int rc;

	memset(&x, 0, sizeof(x));
	memset(&q, 0, sizeof(q));
	pthread_mutex_init(&x.mu, NULL);
	x.fn = row;
	x.arg = arg;
	x.dry = dry_run;
	q.r = r;
	q.x = &x;
	rc = build_known(r, &inflight);
	if (rc)
		goto out;
	x.c.in_flight = inflight;
	if (dry_run) {
		struct dry d = { r, &x, &q };

		rc = collect_jobs(r, &q);
		if (!rc)
			rc = jrnl_in_flight(r->st, dry_one, &d);
		for (i = 0; !rc && i < q.njobs; i++)
			rc = dry_job(r, &x, &q.jobs[i]);
		goto out;
	}
	rc = recover_enqueue(r, &q);
	/* the jobs refer to x: wait for them whatever happened */
	recon_queue_wait_idle(r->q);
	if (!rc)
		rc = q.rc;
out:
	enq_free(&q);
	if (out)
		*out = x.c;
	pthread_mutex_destroy(&x.mu);
	return rc;
}

/* ============================================================ hub ops */

void recon_ops_free(struct recon_op_entry *e, size_t n)
{
	size_t i;

	for (i = 0; e && i < n; i++) {
		buf_free(&e[i].blob);
		buf_free(&e[i].armor);
	}
	free(e);
}

static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict standard base64 with padding into out. */
static int b64_decode(const char *s, size_t n, struct buf *out)
{
	size_t i;
	uint32_t q = 0;
	unsigned bits = 0, pad = 0;

	if (n % 4)
		return FH_ERR_DECODE;
	for (i = 0; i < n; i++) {
		int v;
		uint8_t byte;

		if (s[i] == '=') {
			if (i + 2 < n || (i + 1 < n && s[i + 1] != '='))
				return FH_ERR_DECODE;
			pad++;
			continue;
		}
		if (pad)
			return FH_ERR_DECODE;
		v = b64_val((unsigned char)s[i]);
		if (v < 0)
			return FH_ERR_DECODE;
		q = q << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			byte = (uint8_t)(q >> bits);
			if (buf_append(out, &byte, 1))
				return FH_ERR_TOOBIG;
		}
	}
	if (bits && (q & ((1u << bits) - 1)))
		return FH_ERR_DECODE;   /* non-zero unused bits */
	return 0;
}

static bool id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 128)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static void entry_bad(struct recon_op_entry *e, const char *why)
{
	e->parse_error = FH_ERR_SIG_MALFORMED;
	copy(e->why, sizeof(e->why), why);
}

static void parse_entry(const struct json *o, struct recon_op_entry *e)
{
	const struct json *b = json_get(o, "blob_b64"), *s = json_get(o, "signature"), *a = json_get(o, "action");

	if (b && b->type != JSON_NULL) {
		if (b->type != JSON_STRING || b64_decode(b->s, b->slen, &e->blob)) {
			entry_bad(e, "blob_b64: not base64 of at most 8192 bytes");
			return;
		}
		if (!s || s->type != JSON_STRING || !s->slen || buf_append(&e->armor, s->s, s->slen)) {
			entry_bad(e, "signature: want an armored SSH signature of at most 16 KiB");
			return;
		}
		e->has_blob = true;
	} else if (s && s->type == JSON_STRING && s->slen) {
		entry_bad(e, "signature without blob_b64");
		return;
	}
	if (a && a->type != JSON_NULL) {
		const struct json *op, *g, *p;
		int64_t v = 0;

		if (a->type != JSON_OBJECT) {
			entry_bad(e, "action: want an object");
			return;
		}
		op = json_get(a, "op");
		g = json_get(a, "guest_id");
		p = json_get(a, "params");
		if (!op || op->type != JSON_STRING) {
			entry_bad(e, "action.op: want a string");
			return;
		}
		if (g && g->type != JSON_NULL && (json_int_strict(g, &v) || v < 100 || v > 999999999)) {
			entry_bad(e, "action.guest_id: want a vmid or null");
			return;
		}
		if (gate_action_init(&e->action, op->s, "-", v)) {
			entry_bad(e, "action.op: not [a-z0-9_]{1,63}");
			return;
		}
		if (p && p->type != JSON_NULL && params_from_json(&e->action, p)) {
			entry_bad(e, "action.params: want an object of at most 16 scalar members");
			return;
		}
		e->has_action = true;
	}
	if (!e->has_blob && !e->has_action)
		entry_bad(e, "want blob_b64 + signature, or action");
}

int recon_ops_parse(const char *p, size_t n, struct recon_op_entry **entries, size_t *nentries, char *why,
		    size_t whylen)
{
	const struct json_limits lim = { RECON_OPS_MAX_BYTES, 8, false };
	struct json *root = NULL;
	const struct json *ops;
	struct recon_op_entry *v = NULL;
	char jerr[128];
	size_t i, k = 0;
	int rc;

	if (!p || !entries || !nentries)
		return FH_ERR_INVAL;
	if (n > RECON_OPS_MAX_BYTES) {
		snprintf(why, whylen, "signed ops over %zu bytes", RECON_OPS_MAX_BYTES);
		return FH_ERR_TOOBIG;
	}
	rc = json_parse(p, n, &lim, &root, jerr, sizeof(jerr));
	if (rc) {
		snprintf(why, whylen, "signed ops are not JSON: %s", jerr);
		return rc == FH_ERR_NOMEM ? rc : FH_ERR_DECODE;
	}
	rc = FH_ERR_DECODE;
	ops = root->type == JSON_OBJECT ? json_get(root, "ops") : NULL;
	if (!ops || ops->type != JSON_ARRAY) {
		snprintf(why, whylen, "signed ops: want {\"ops\":[...]}");
		goto out;
	}
	if (ops->n > RECON_OPS_MAX) {
		snprintf(why, whylen, "signed ops: %zu entries, more than %d", ops->n, RECON_OPS_MAX);
		rc = FH_ERR_TOOBIG;
		goto out;
	}
	v = calloc(ops->n ? ops->n : 1, sizeof(*v));
	if (!v) {
		rc = FH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < ops->n; i++) {
		const struct json *o = ops->items[i], *id = o->type == JSON_OBJECT ? json_get(o, "id") : NULL;
		struct recon_op_entry *e = &v[k];

		if (!id || id->type != JSON_STRING || !id_ok(id->s, id->slen))
			continue;        /* nobody to answer */
		buf_init(&e->blob, OPBLOB_MAX_BYTES + 1);
		buf_init(&e->armor, SIG_ARMOR_MAX + 1);
		memcpy(e->id, id->s, id->slen);
		k++;
		parse_entry(o, e);
	}
	*entries = v;
	*nentries = k;
	v = NULL;
	rc = 0;
out:
	free(v);
	json_free(root);
	return rc;
}

int recon_record_rejection(struct recon *r, const char *job_id, const char *op_id, const char *op, int64_t guest,
			   int reason, const char *why, int64_t idem_expires_at)
{
	struct store_txn *t = NULL;
	struct idem_rec ir;
	struct audit_rec ar;
	int rc;

	rc = store_txn_begin(r->st, true, &t);
	if (rc)
		return rc;
	if (job_id && *job_id) {
		memset(&ir, 0, sizeof(ir));
		ir.outcome = TASK_OUT_REJECTED;
		copy(ir.reason, sizeof(ir.reason), reason_name(reason));
		ir.expires_at = idem_expires_at > 0 ? idem_expires_at : wall_s() + r->o.idem_retention_s;
		rc = idem_put(t, job_id, &ir);
		if (rc == FH_ERR_DUPLICATE)
			rc = 0;
	}
	if (!rc && op_id && *op_id)
		rc = outbox_put(t, op_id, TASK_OUT_REJECTED, reason_name(reason));
	if (rc) {
		store_txn_abort(t);
		return rc;
	}
	rc = store_txn_commit(t);
	if (rc)
		return rc;
	if (op_id && *op_id)
		notify_result(r);
	stat_add(r, &r->s.rejected, 1);
	memset(&ar, 0, sizeof(ar));
	ar.decision = AUDIT_REJECTED;
	ar.op = op && *op ? op : "unknown";
	ar.guest_id = guest ? guest : AUDIT_NO_GUEST;
	ar.outcome = TASK_OUT_REJECTED;
	ar.reason = reason_name(reason);
	(void)why;
	audit_alone(r, &ar);
	return 0;
}

int recon_signed_op(struct recon *r, const struct recon_op_entry *e, int64_t now, enum task_outcome *outcome_now)
{
	struct recon_job *job = NULL;
	struct idem_rec ir;
	char key[RECON_JOB_ID_MAX + 1], why[256] = "";
	int rc;

	*outcome_now = TASK_OUT_NONE;
	memcpy(key, "op:", 3);
	copy(key + 3, sizeof(key) - 3, e->id);
	/* a redelivery gets the stored outcome, whatever the bytes say now */
	rc = idem_get(r->st, key, &ir);
	if (!rc) {
		struct store_txn *t = NULL;

		if (ir.outcome == TASK_OUT_NONE)
			return 0;              /* still executing */
		*outcome_now = ir.outcome;
		stat_add(r, &r->s.replayed, 1);
		rc = store_txn_begin(r->st, true, &t);
		if (!rc) {
			rc = outbox_put(t, e->id, ir.outcome, ir.reason);
			if (rc)
				store_txn_abort(t);
			else
				rc = store_txn_commit(t);
		}
		if (!rc)
			notify_result(r);
		return rc;
	}
	if (rc != FH_ERR_NOT_FOUND)
		return rc;
	if (e->parse_error) {
		*outcome_now = TASK_OUT_REJECTED;
		return recon_record_rejection(r, key, e->id, "unknown", 0, e->parse_error, e->why, 0);
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return FH_ERR_NOMEM;
	job->source = JRNL_SRC_SIGNED;
	copy(job->job_id, sizeof(job->job_id), key);
	copy(job->op_id, sizeof(job->op_id), e->id);
	job->nsteps = 1;
	if (e->has_blob) {
		rc = gate_check(r->gate, (const uint8_t *)e->blob.data, e->blob.len, buf_str(&e->armor), e->armor.len, now,
				&job->vd, why, sizeof(why));
		if (rc) {
			/* an op that did not verify burns no nonce */
			free(job);
			*outcome_now = TASK_OUT_REJECTED;
			return recon_record_rejection(r, key, e->id, e->has_action ? e->action.b.op : "unknown",
						      e->has_action && e->action.b.has_guest ? e->action.b.guest_id : 0, rc,
						      why, 0);
		}
		job->is_signed = true;
		if (e->has_action)
			job->steps[0] = e->action;
		else
			gate_action_from_blob(&job->steps[0], &job->vd.op);
		/* kept past the blob's life: a replay is expired by then anyway */
		job->idem_expires_at = job->vd.op.expires_at + r->o.idem_retention_s;
	} else {
		job->steps[0] = e->action;
	}
	copy(job->steps[0].b.host_id, sizeof(job->steps[0].b.host_id), r->host_id);
	rc = recon_submit(r, job, NULL, NULL);
	free(job);
	if (rc == FH_ERR_DUPLICATE)
		rc = 0;                        /* queued already */
	return rc;
}

/* ====================================================== the planner pass */

int recon_plan_pass(struct recon *r, const struct recon_desired *d, struct recon_pass *out)
{
	struct recon_pass ps;
	struct pve_guest *rows = NULL;
	struct recon_actual_guest *act = NULL;
	struct recon_plan plan;
	struct recon_job *job = NULL;
	struct pve_err e;
	size_t nrows = 0, nact = 0, i;
	int64_t busy_vmid = -1, checked_vmid = -1;
	int rc;

	memset(&ps, 0, sizeof(ps));
	memset(&plan, 0, sizeof(plan));
	if (out)
		memset(out, 0, sizeof(*out));
	if (!d || !d->generation || atomic_load(&r->blocked))
		return 0;
	rc = pve_list_lxc(r->main, &rows, &nrows, &e);
	if (rc) {
		ps.read_error = rc;
		snprintf(ps.why, sizeof(ps.why), "guest list: %.200s", e.reason);
		goto out;
	}
	act = calloc(nrows + 1, sizeof(*act));
	job = calloc(1, sizeof(*job));
	if (!act || !job) {
		rc = FH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < nrows; i++) {
		struct recon_desired_guest key = { .vmid = rows[i].vmid };
		struct pve_guest_config cfg;
		bool want = bsearch(&key, d->g, d->n, sizeof(*d->g), cmp_desired) != NULL;
		int cr = want ? pve_guest_config(r->main, rows[i].vmid, &cfg, &e) : FH_ERR_NOT_FOUND;

		if (cr == FH_ERR_CANCELLED) {
			rc = cr;
			goto out;
		}
		rc = recon_actual_from_pve(&rows[i], cr ? NULL : &cfg, &act[nact]);
		if (!cr)
			pve_guest_config_free(&cfg);
		if (rc)
			goto out;
		nact++;
	}
	rc = recon_plan(d, act, nact, &plan);
	if (rc)
		goto out;
	ps.planned = plan.n;
	ps.awaiting = plan.nawaiting;
	ps.converged = plan.nconverged;
	for (i = 0; i < plan.n; i++) {
		const struct recon_action *a = &plan.a[i];
		char pkey[96];

		if (a->vmid == busy_vmid)
			continue;
		if (a->vmid != checked_vmid) {
			checked_vmid = a->vmid;
			if (recon_queue_lane_busy(r->q, a->vmid)) {
				busy_vmid = a->vmid;
				ps.busy++;
				continue;
			}
		}
		snprintf(pkey, sizeof(pkey), "ds:%" PRId64 ":%d:%s", d->generation, a->vmid, recon_act_name(a->act));
		if (pending_seen(r, pkey, false))
			continue;          /* held for a signature already this generation */
		memset(job, 0, sizeof(*job));
		job->source = JRNL_SRC_DESIRED;
		snprintf(job->job_id, sizeof(job->job_id), "desired:%" PRId64, d->generation);
		job->nsteps = 1;
		if (recon_action_to_gate(a, r->host_id, &job->steps[0]))
			continue;
		/* a pending_signature decision marks pkey (admit): audited once */
		rc = submit_job(r, job, NULL, NULL, pkey);
		if (!rc)
			ps.submitted++;
		else if (rc == FH_ERR_QUEUE_FULL)
			ps.refused++;
		else if (rc == FH_ERR_BLOCKED)
			break;
	}
	rc = 0;
out:
	if (out)
		*out = ps;
	recon_plan_free(&plan);
	recon_actual_free(act, nact);
	free(act);
	free(job);
	free(rows);
	return rc;
}

/* =============================================================== tools */

int recon_lock(const char *state_dir, int *fd)
{
	char path[4096];
	int f;

	if (!state_dir || !fd)
		return FH_ERR_INVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/engine.lock", state_dir) >= sizeof(path))
		return FH_ERR_INVAL;
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return FH_ERR_IO;
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (f < 0)
		return FH_ERR_IO;
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(f);
		return e == EWOULDBLOCK ? FH_ERR_LOCKED : FH_ERR_IO;
	}
	*fd = f;
	return 0;
}

static int j_str(struct buf *o, const char *k, const char *v)
{
	int r = buf_printf(o, ",\"%s\":", k);

	return r ? r : (json_canonical_string(v, strlen(v), o) ? buf_appendz(o, "\"?\"") : 0);
}

int recon_entry_json(const struct jrnl_entry *e, struct buf *out)
{
	size_t start = out->len, i;
	int r;

	r = buf_printf(out, "{\"id\":%" PRIu64, e->id);
	if (!r)
		r = j_str(out, "job_id", e->job_id);
	if (!r)
		r = j_str(out, "source", jrnl_source_name(e->source));
	if (!r)
		r = j_str(out, "op", e->op);
	if (!r)
		r = e->vmid > 0 ? buf_printf(out, ",\"vmid\":%" PRId64, e->vmid) : buf_appendz(out, ",\"vmid\":null");
	if (!r)
		r = buf_printf(out, ",\"params\":%s", e->params[0] ? e->params : "{}");
	if (!r)
		r = buf_printf(out, ",\"flags\":%" PRIu32, e->flags);
	if (!r)
		r = j_str(out, "signer_key_id", e->signer_key_id);
	if (!r)
		r = j_str(out, "state", task_state_name(e->state));
	if (!r)
		r = buf_appendz(out, ",\"history\":[");
	for (i = 0; !r && i < e->nhist && i < JRNL_HIST_MAX; i++)
		r = buf_printf(out, "%s{\"event\":\"%s\",\"at\":%" PRId64 "}", i ? "," : "",
			       task_event_name(e->hist[i].ev), e->hist[i].at);
	if (!r)
		r = buf_appendz(out, "]");
	if (!r)
		r = j_str(out, "upid", e->upid);
	if (!r)
		r = j_str(out, "outcome", task_outcome_name(e->outcome));
	if (!r)
		r = j_str(out, "reason", e->reason);
	if (!r)
		r = j_str(out, "text", e->text);
	if (!r)
		r = buf_printf(out, ",\"created_at\":%" PRId64 ",\"updated_at\":%" PRId64 ",\"closed_at\":%" PRId64 "}",
			       e->created_at, e->updated_at, e->closed_at);
	if (r && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}

/* log.c — logfmt/JSON event lines to stderr; see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

#define LOG_MAX_SECRETS 16
#define LOG_LINE_MAX 8192

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_FMT_LOGFMT;
static FILE *log_sink;
static char *log_secrets[LOG_MAX_SECRETS];
static size_t log_nsecrets;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_level min, enum log_format fmt, FILE *sink)
{
	pthread_mutex_lock(&log_lock);
	log_min = min;
	log_fmt = fmt;
	log_sink = sink;
	pthread_mutex_unlock(&log_lock);
}

int log_level_parse(const char *s)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0)
			return i;
	}
	return -1;
}

int log_format_parse(const char *s)
{
	if (strcmp(s, "logfmt") == 0)
		return LOG_FMT_LOGFMT;
	if (strcmp(s, "json") == 0)
		return LOG_FMT_JSON;
	return -1;
}

void log_add_secret(const char *secret)
{
	if (!secret || strlen(secret) < 4)
		return;     /* too short to scrub without mangling ordinary text */
	pthread_mutex_lock(&log_lock);
	if (log_nsecrets < LOG_MAX_SECRETS) {
		char *c = strdup(secret);
		if (c)
			log_secrets[log_nsecrets++] = c;
	}
	pthread_mutex_unlock(&log_lock);
}

void log_clear_secrets(void)
{
	size_t i;

	pthread_mutex_lock(&log_lock);
	for (i = 0; i < log_nsecrets; i++) {
		free(log_secrets[i]);
		log_secrets[i] = NULL;
	}
	log_nsecrets = 0;
	pthread_mutex_unlock(&log_lock);
}

/* Length of a registered secret starting at s, or 0. Caller holds the lock. */
static size_t secret_at(const char *s)
{
	size_t i;

	for (i = 0; i < log_nsecrets; i++) {
		size_t n = strlen(log_secrets[i]);
		if (strncmp(s, log_secrets[i], n) == 0)
			return n;
	}
	return 0;
}

static int needs_quotes(const char *v)
{
	const unsigned char *p;

	if (!*v)
		return 1;
	for (p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return 1;
	}
	return 0;
}

/* Appends v escaped for the current format; secrets become [REDACTED]. */
static void put_value(struct buf *b, const char *v, int json)
{
	const unsigned char *p = (const unsigned char *)v;
	int q = json || needs_quotes(v);

	if (q)
		buf_append(b, "\"", 1);
	while (*p) {
		size_t sn = secret_at((const char *)p);
		if (sn) {
			buf_appendz(b, "[REDACTED]");
			p += sn;
			continue;
		}
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };
			buf_append(b, e, 2);
		} else if (*p == '\n') {
			buf_appendz(b, "\\n");
		} else if (*p == '\t') {
			buf_appendz(b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_printf(b, "\\u%04x", *p);
		} else {
			buf_append(b, p, 1);
		}
		p++;
	}
	if (q)
		buf_append(b, "\"", 1);
}

static void put_pair(struct buf *b, const char *k, const char *v, int first)
{
	if (log_fmt == LOG_FMT_JSON) {
		if (!first)
			buf_append(b, ",", 1);
		put_value(b, k, 1);
		buf_append(b, ":", 1);
		put_value(b, v ? v : "", 1);
	} else {
		if (!first)
			buf_append(b, " ", 1);
		buf_appendz(b, k);
		buf_append(b, "=", 1);
		put_value(b, v ? v : "", 0);
	}
}

static void emit(enum log_level lvl, const char *event, va_list ap, const char *msg)
{
	struct buf b;
	char ts[96];
	struct timespec now;
	struct tm tm;
	const char *k;
	FILE *out;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now.tv_nsec / 1000000) % 1000);
	buf_init(&b, LOG_LINE_MAX);
	pthread_mutex_lock(&log_lock);
	if (log_fmt == LOG_FMT_JSON)
		buf_append(&b, "{", 1);
	put_pair(&b, "ts", ts, 1);
	put_pair(&b, "level", level_names[lvl], 0);
	put_pair(&b, "event", event, 0);
	if (msg)
		put_pair(&b, "msg", msg, 0);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		put_pair(&b, k, v, 0);
	}
	if (log_fmt == LOG_FMT_JSON)
		buf_append(&b, "}", 1);
	out = log_sink ? log_sink : stderr;
	if (b.len == 0 || (b.len >= LOG_LINE_MAX - 2)) {
		/* over the line cap: the line is cut, never split across lines */
		fputs(buf_str(&b), out);
		fputs(" truncated=true\n", out);
	} else {
		fputs(buf_str(&b), out);
		fputc('\n', out);
	}
	fflush(out);
	pthread_mutex_unlock(&log_lock);
	buf_free(&b);
}

void log_event(enum log_level lvl, const char *event, ...)
{
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, event);
	emit(lvl, event, ap, NULL);
	va_end(ap);
}

static void emit_msg(enum log_level lvl, const char *event, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	emit(lvl, event, ap, msg);
	va_end(ap);
}

void log_msg(enum log_level lvl, const char *event, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit_msg(lvl, event, msg, (const char *)NULL);
}

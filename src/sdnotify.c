/* sdnotify.c — the sd_notify datagram protocol; see sdnotify.h. */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

struct sdnotify {
	int fd;                      /* -1 when disabled */
	struct sockaddr_un addr;
	socklen_t addrlen;
	uint64_t watchdog_usec;
};

static const char *env_get(const char *const envp[], const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; envp && envp[i]; i++) {
		if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
			return envp[i] + n + 1;
	}
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int sdnotify_open(const char *const envp[], struct sdnotify **out)
{
	struct sdnotify *n = calloc(1, sizeof(*n));
	const char *sock, *wd, *wdpid;
	const struct timeval tmo = { SDNOTIFY_SEND_TIMEOUT_MS / 1000, (SDNOTIFY_SEND_TIMEOUT_MS % 1000) * 1000 };
	uint64_t v, pid;
	size_t len;
	int r = FH_ERR_CONFIG;

	if (!n)
		return FH_ERR_NOMEM;
	n->fd = -1;
	if (!envp)
		envp = (const char *const *)environ;
	sock = env_get(envp, "NOTIFY_SOCKET");
	wd = env_get(envp, "WATCHDOG_USEC");
	wdpid = env_get(envp, "WATCHDOG_PID");
	if (wd && !parse_u64(wd, &v) && v > 0 &&
	    (!wdpid || (!parse_u64(wdpid, &pid) && pid == (uint64_t)getpid())))
		n->watchdog_usec = v;
	if (!sock || !*sock) {
		*out = n;
		return 0;
	}
	len = strlen(sock);
	if ((sock[0] != '/' && sock[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path))
		goto out;   /* vsock: and relative names are not supported */
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, sock, len);
	if (sock[0] == '@')
		n->addr.sun_path[0] = '\0';   /* abstract namespace: no trailing NUL counted */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (sock[0] == '/' ? 1 : 0));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0 || setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo))) {
		r = FH_ERR_IO;
		goto out;
	}
	*out = n;
	n = NULL;
	r = 0;
out:
	sdnotify_close(n);
	return r;
}

void sdnotify_close(struct sdnotify *n)
{
	if (!n)
		return;
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

int sdnotify_enabled(const struct sdnotify *n)
{
	return n && n->fd >= 0;
}

int sdnotify_send(struct sdnotify *n, const char *msg)
{
	size_t len = strlen(msg);
	ssize_t w;

	if (!n || n->fd < 0)
		return 0;
	if (len > SDNOTIFY_MAX_MSG)
		return FH_ERR_TOOBIG;
	do {
		w = sendto(n->fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addrlen);
	} while (w < 0 && errno == EINTR);
	return w == (ssize_t)len ? 0 : FH_ERR_IO;
}

uint64_t sdnotify_watchdog_usec(const struct sdnotify *n)
{
	return n ? n->watchdog_usec : 0;
}

void sdnotify_reloading_msg(char *dst, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(dst, len, "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

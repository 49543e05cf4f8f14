/* sdnotify.h — the systemd notification protocol (sd_notify(3)), written
 * here rather than taken from libsystemd: one AF_UNIX datagram per message
 * to the socket named by $NOTIFY_SOCKET (a path, or an abstract socket
 * name written with a leading '@'), and the watchdog period from
 * $WATCHDOG_USEC / $WATCHDOG_PID.
 *
 * Messages the daemon sends (newline-separated assignments):
 *   READY=1                        startup finished (and after a reload)
 *   RELOADING=1\nMONOTONIC_USEC=N  a reload began; N is CLOCK_MONOTONIC in
 *                                  microseconds, which Type=notify-reload
 *                                  (systemd >= 253) requires
 *   STOPPING=1                     shutdown began
 *   WATCHDOG=1                     keep-alive, at half of WATCHDOG_USEC
 *   STATUS=...                     one line for `systemctl status`
 *
 * Without $NOTIFY_SOCKET every send is a successful no-op. A send waits
 * at most SDNOTIFY_SEND_TIMEOUT_MS when the manager's queue is full (a
 * busy PID 1 must not lose READY=1, a stuck one must not stall the
 * agent), and sends are safe from several threads at once.
 */
#ifndef FH_SDNOTIFY_H
#define FH_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define SDNOTIFY_MAX_MSG 4096
#define SDNOTIFY_SEND_TIMEOUT_MS 1000

struct sdnotify;

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from envp (NULL =
 * environ) and opens the socket. A missing NOTIFY_SOCKET is not an error
 * (*out is a disabled notifier). FH_ERR_CONFIG for an unusable value
 * (relative path, too long, vsock), FH_ERR_IO, FH_ERR_NOMEM. */
int sdnotify_open(const char *const envp[], struct sdnotify **out);
void sdnotify_close(struct sdnotify *n);
/* 1 when NOTIFY_SOCKET was set. */
int sdnotify_enabled(const struct sdnotify *n);
/* Sends msg as one datagram. 0, FH_ERR_IO (errno kept), FH_ERR_TOOBIG. */
int sdnotify_send(struct sdnotify *n, const char *msg);
/* The watchdog period in microseconds when the service manager asked for
 * one for this process (WATCHDOG_USEC set and WATCHDOG_PID unset or equal
 * to getpid()), else 0. Keep-alives are due at half of it. */
uint64_t sdnotify_watchdog_usec(const struct sdnotify *n);
/* "RELOADING=1\nMONOTONIC_USEC=<now>" into dst. */
void sdnotify_reloading_msg(char *dst, size_t len);

#endif

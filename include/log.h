/* log.h — one event per line to stderr, logfmt (key=value) or JSON.
 *
 * Usage: log_event(LOG_INFO, "selftest.done", "guests", "12", "ms", "40", NULL);
 * Keys and values are pairs of strings ending with NULL. Values are quoted
 * and escaped as logfmt needs. Registered secrets (log_add_secret) are
 * replaced by "[REDACTED]" wherever they appear in a value, as a last line
 * of defence; code must still never pass a secret to the logger.
 */
#ifndef FH_LOG_H
#define FH_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
enum log_format { LOG_FMT_LOGFMT = 0, LOG_FMT_JSON = 1 };

void log_setup(enum log_level min, enum log_format fmt, FILE *sink);
/* "debug"/"info"/"warn"/"error" -> level; -1 if unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);   /* "logfmt"/"json" -> format; -1 */
/* Remember a secret to scrub from every later line (copied; up to 16). */
void log_add_secret(const char *secret);
void log_clear_secrets(void);
void log_event(enum log_level lvl, const char *event, ...) __attribute__((sentinel));
/* printf-style message as the "msg" field. */
void log_msg(enum log_level lvl, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

/* What xturnd tells its service manager (systemd's sd_notify protocol,
 * through libsystemd; nothing when NOTIFY_SOCKET is unset): ready once every
 * listener is bound and the fast path attached or declined, reloading
 * around SIGHUP, stopping, and a status line. */
#ifndef XT_SERVICE_H
#define XT_SERVICE_H

void service_ready(void);
void service_reloading(void);
void service_stopping(void);
/* The service's main process is pid from now on (a handover). */
void service_mainpid(int pid);
/* STATUS=...: shown by `systemctl status`. */
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

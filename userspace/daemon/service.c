#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "daemon/service.h"

void service_ready(void)
{
	sd_notify(0, "READY=1");
}

/* MONOTONIC_USEC lets a Type=notify-reload manager match the READY=1 that
 * ends this reload (systemd.service(5)). */
void service_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000 + (unsigned long long)ts.tv_nsec / 1000);
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void service_status(const char *fmt, ...)
{
	char status[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", status);
}

void service_mainpid(int pid)
{
	sd_notifyf(0, "MAINPID=%d", pid);
}

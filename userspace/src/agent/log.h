/* SPDX-License-Identifier: MIT */
/* Agent logging: journald priority prefixes under systemd, pid otherwise. */
#ifndef HL_AGENT_LOG_H
#define HL_AGENT_LOG_H

extern int hl_log_verbose;	/* 0 errors, 1 info (default), 2 debug */

void hl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOGE(...) hl_log(0, __VA_ARGS__)
#define LOGI(...) hl_log(1, __VA_ARGS__)
#define LOGD(...) hl_log(2, __VA_ARGS__)

#endif

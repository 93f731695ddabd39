/* SPDX-License-Identifier: MIT */
/* hugelive-vm: the QMP client (see qmp.h). */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum qmp_kind qmp_classify(json_object *msg, char *err, size_t errlen)
{
	json_object *v, *c, *d;

	if (!msg || !json_object_is_type(msg, json_type_object))
		return QMP_INVALID;
	if (json_object_object_get_ex(msg, "QMP", &v))
		return QMP_GREETING;
	if (json_object_object_get_ex(msg, "return", &v))
		return QMP_RETURN;
	if (json_object_object_get_ex(msg, "error", &v)) {
		if (err && errlen) {
			const char *cls = json_object_object_get_ex(v, "class", &c) ? json_object_get_string(c) : NULL;
			const char *desc = json_object_object_get_ex(v, "desc", &d) ? json_object_get_string(d) : NULL;

			snprintf(err, errlen, "%s: %s", cls ? cls : "error", desc ? desc : "(no description)");
		}
		return QMP_ERROR;
	}
	if (json_object_object_get_ex(msg, "event", &v) && json_object_is_type(v, json_type_string))
		return QMP_EVENT;
	return QMP_INVALID;
}

static int get_int(json_object *o, const char *key, int *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -EINVAL;
	*out = json_object_get_int(v);
	return 0;
}

int qmp_greeting_version(json_object *msg, int *major, int *minor, int *micro)
{
	json_object *q, *ver, *qemu;

	if (!json_object_object_get_ex(msg, "QMP", &q) || !json_object_object_get_ex(q, "version", &ver) ||
	    !json_object_object_get_ex(ver, "qemu", &qemu))
		return -EINVAL;
	if (get_int(qemu, "major", major) || get_int(qemu, "minor", minor) || get_int(qemu, "micro", micro))
		return -EINVAL;
	return 0;
}

int qmp_parse_version_text(const char *text, int *major, int *minor, int *micro)
{
	const char *p = text ? strstr(text, "version ") : NULL;
	int n = 0;

	if (!p)
		return -EINVAL;
	*micro = 0;
	if (sscanf(p + 8, "%d.%d%n", major, minor, &n) != 2 || *major < 0 || *minor < 0)
		return -EINVAL;
	if (p[8 + n] == '.' && sscanf(p + 8 + n + 1, "%d", micro) != 1)
		return -EINVAL;
	return 0;
}

int qmp_migrate_status(json_object *ret, char *status, size_t slen, char *errdesc, size_t elen)
{
	json_object *v;

	if (!ret || !json_object_is_type(ret, json_type_object))
		return -EINVAL;
	snprintf(status, slen, "%s", json_object_object_get_ex(ret, "status", &v) ?
		 json_object_get_string(v) : "none");
	if (errdesc && elen)
		snprintf(errdesc, elen, "%s", json_object_object_get_ex(ret, "error-desc", &v) ?
			 json_object_get_string(v) : "");
	return 0;
}

bool qmp_has_capability(json_object *ret, const char *name)
{
	size_t n;

	if (!ret || !json_object_is_type(ret, json_type_array))
		return false;
	n = json_object_array_length(ret);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(ret, i), *c;

		if (json_object_object_get_ex(e, "capability", &c) && !strcmp(json_object_get_string(c), name))
			return true;
	}
	return false;
}

json_object *qmp_take_line(char *buf, size_t *len, bool *complete)
{
	char *nl = memchr(buf, '\n', *len);
	size_t n;
	json_object *o;
	json_tokener *tok;

	*complete = false;
	if (!nl)
		return NULL;
	*complete = true;
	n = (size_t)(nl - buf);
	tok = json_tokener_new();
	o = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	if (tok)
		json_tokener_free(tok);
	memmove(buf, nl + 1, *len - n - 1);
	*len -= n + 1;
	return o;
}

/* Next message from the socket, waiting until deadline (ms, monotonic). */
static int read_msg(struct qmp *q, long long deadline, json_object **out)
{
	for (;;) {
		bool complete;
		json_object *o = qmp_take_line(q->buf, &q->len, &complete);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		long long left;
		ssize_t n;

		if (o) {
			*out = o;
			return 0;
		}
		if (complete)
			continue;	/* a line that is not JSON: skip it */
		if (q->len == sizeof(q->buf)) {
			snprintf(q->err, sizeof(q->err), "QMP message longer than %zu bytes", sizeof(q->buf));
			return -EMSGSIZE;
		}
		left = deadline - now_ms();
		if (left <= 0) {
			snprintf(q->err, sizeof(q->err), "no answer from QEMU's QMP socket in time");
			return -ETIMEDOUT;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(q->err, sizeof(q->err), "QEMU closed its QMP socket%s%s", n < 0 ? ": " : "",
				 n < 0 ? strerror(errno) : " (did it exit?)");
			return n < 0 ? -errno : -ECONNRESET;
		}
		q->len += (size_t)n;
	}
}

static int send_all(struct qmp *q, const char *s, int fd)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		struct iovec iov = { .iov_base = (char *)s + off, .iov_len = len - off };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (fd >= 0 && off == 0) {
			memset(&cm, 0, sizeof(cm));
			m.msg_control = cm.b;
			m.msg_controllen = sizeof(cm.b);
			struct cmsghdr *c = CMSG_FIRSTHDR(&m);

			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		n = sendmsg(q->fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(q->err, sizeof(q->err), "sending to QEMU's QMP socket: %s", strerror(errno));
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

int qmp_exec(struct qmp *q, const char *cmd, json_object *args, int fd, json_object **ret, int timeout_ms)
{
	json_object *req = json_object_new_object(), *msg = NULL;
	long long deadline = now_ms() + timeout_ms;
	int rc;

	if (ret)
		*ret = NULL;
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	char *line = NULL;

	if (asprintf(&line, "%s\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN)) < 0)
		line = NULL;
	json_object_put(req);
	if (!line)
		return -ENOMEM;
	rc = send_all(q, line, fd);
	free(line);
	if (rc)
		return rc;
	for (;;) {
		json_object *v;

		rc = read_msg(q, deadline, &msg);
		if (rc)
			return rc;
		switch (qmp_classify(msg, q->err, sizeof(q->err))) {
		case QMP_RETURN:
			if (ret && json_object_object_get_ex(msg, "return", &v))
				*ret = json_object_get(v);
			json_object_put(msg);
			return 0;
		case QMP_ERROR:
			json_object_put(msg);
			return -EIO;
		case QMP_EVENT:
			if (q->on_event) {
				json_object *d = NULL;

				json_object_object_get_ex(msg, "event", &v);
				json_object_object_get_ex(msg, "data", &d);
				q->on_event(json_object_get_string(v), d, q->arg);
			}
			break;
		default:
			break;
		}
		json_object_put(msg);
	}
}

int qmp_connect(struct qmp *q, const char *path, int timeout_ms)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + timeout_ms;
	json_object *msg = NULL;
	int rc;

	q->fd = -1;
	q->len = 0;
	q->err[0] = 0;
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(q->err, sizeof(q->err), "QMP socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(a.sun_path, path);
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return -errno;
		if (!connect(q->fd, (struct sockaddr *)&a, sizeof(a)))
			break;
		rc = -errno;
		close(q->fd);
		q->fd = -1;
		if (now_ms() >= deadline) {
			snprintf(q->err, sizeof(q->err), "cannot connect to QMP socket %s: %s", path, strerror(-rc));
			return rc;
		}
		usleep(20000);
	}
	/* connected: the greeting may take a while from a QEMU under load */
	deadline = now_ms() + 30000;
	rc = read_msg(q, deadline, &msg);
	if (rc)
		goto fail;
	if (qmp_classify(msg, NULL, 0) != QMP_GREETING ||
	    qmp_greeting_version(msg, &q->major, &q->minor, &q->micro)) {
		json_object_put(msg);
		snprintf(q->err, sizeof(q->err), "%s: no QMP greeting", path);
		rc = -EPROTO;
		goto fail;
	}
	json_object_put(msg);
	rc = qmp_exec(q, "qmp_capabilities", NULL, -1, NULL, 30000);
	if (!rc)
		return 0;
fail:
	close(q->fd);
	q->fd = -1;
	return rc;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	q->len = 0;
}

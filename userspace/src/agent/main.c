/* SPDX-License-Identifier: MIT */
/*
 * hugelived: the live update agent. Sole owner of /dev/liveupdate; serves
 * clients over a SOCK_SEQPACKET Unix socket (docs/protocol.md). This file
 * parses options and wires the parts together (see agent.h).
 */
#include "agent.h"
#include "../common/kcheck.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static struct agent *g_agent;

static void on_signal(int sig)
{
	(void)sig;
	/* handed to systemd: stay with the session fds until systemd-shutdown kexecs */
	if (g_agent && !g_agent->upd.handed_off)
		g_agent->srv.quit = 1;
}

/* ---- wiring of the server callbacks ---------------------------------- */

static void cb_request(void *ctx, struct client *c, struct hl_req *r, int fd)
{
	handle_request(ctx, c, r, fd);
}

static void cb_gone(void *ctx, struct client *c)
{
	update_client_gone(ctx, c);
}

static void cb_tick(void *ctx)
{
	int64_t now = hl_now_ms();

	update_tick(ctx, now);
	handlers_tick(ctx, now);
	fdstore_tick(&((struct agent *)ctx)->fds, now);
}

static int64_t earliest(int64_t a, int64_t b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static int64_t cb_deadline(void *ctx)
{
	struct agent *a = ctx;

	return earliest(earliest(update_deadline(a), handlers_deadline(a)), fdstore_deadline(&a->fds));
}

/* ---- keeper watch: a keeper killed while the agent idles is replaced at once */

static void on_keeper_event(void *ctx, int fd)
{
	struct agent *a = ctx;

	(void)fd;
	fdstore_keeper_event(&a->fds);
}

static void keeper_changed(void *ctx, int old_fd, int new_fd)
{
	struct agent *a = ctx;

	if (old_fd >= 0)
		server_unwatch(&a->srv, old_fd);
	if (new_fd >= 0 && server_watch(&a->srv, new_fd, on_keeper_event, a) < 0)
		LOGE("cannot watch the fd keeper connection: a dead keeper is noticed only at the next store");
}

static const struct server_ops agent_ops = {
	.request = cb_request,
	.gone = cb_gone,
	.tick = cb_tick,
	.next_deadline = cb_deadline,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hugelived [options]\n"
		"  --socket PATH          client socket (default " HL_DEFAULT_SOCKET ", $HUGELIVE_SOCKET)\n"
		"  --socket-mode MODE     socket permissions, octal (default 0666)\n"
		"  --device PATH          LUO device (default " HL_DEFAULT_DEVICE ", $HUGELIVE_DEVICE)\n"
		"  --fd-store MODE        auto|systemd|keeper|none: where session fds survive an\n"
		"                         agent restart (default auto: systemd if $NOTIFY_SOCKET)\n"
		"  --keeper-socket PATH   keeper socket (default /run/hugelive/keeper.sock)\n"
		"  --claim-timeout SEC    after an update, time for clients to reclaim (default 300)\n"
		"  --unclaimed POLICY     finish|keep: what to do with unclaimed sessions (default finish)\n"
		"  --barrier-uid UID      this uid's subscribers may refuse an update without owning a\n"
		"                         session (repeatable; default: only session owners and root)\n"
		"  --idle-timeout SEC     drop non-root clients that neither subscribed nor sent a\n"
		"                         request for SEC seconds (default 60)\n"
		"  --kexec-via MODE       auto|systemd|direct: how the kexec happens (default auto:\n"
		"                         systemd when it is PID 1 and started us as a unit, else\n"
		"                         direct: sync, unmount/remount read-only, reboot(KEXEC))\n"
		"  --running-kernel IMG   the running kernel's image, whose formats a target image\n"
		"                         must read (default /boot/vmlinuz-$(uname -r), then\n"
		"                         /lib/modules/$(uname -r)/vmlinuz; else a built-in table)\n"
		"  --daemonize            fork; the parent exits once the socket is ready\n"
		"  -v, --verbose          more logging (repeat for debug)\n"
		"  -q, --quiet            errors only\n"
		"  --version\n"
		"test-only:\n"
		"  --fake-luo SOCKET      use the hugelive-fakeluo server instead of the kernel\n"
		"internal:\n"
		"  --keeper               run as the fd keeper process\n");
}

/*
 * The agent holds up to HL_MAX_SESSIONS_TOTAL session fds, HL_MAX_CLIENTS
 * client sockets, fds in flight to the closer, and its own few: more than
 * the usual soft limit of 1024. Raise the soft limit (and the hard one, if
 * allowed) to HL_NOFILE_WANT before anything is opened; the keeper, spawned
 * later, inherits it.
 */
#define HL_NOFILE_WANT 16384
static void raise_nofile(void)
{
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= HL_NOFILE_WANT)
		return;
	want.rlim_cur = want.rlim_max = HL_NOFILE_WANT;
	if (rl.rlim_max >= HL_NOFILE_WANT || setrlimit(RLIMIT_NOFILE, &want) < 0) {
		want.rlim_cur = rl.rlim_max < HL_NOFILE_WANT ? rl.rlim_max : HL_NOFILE_WANT;
		want.rlim_max = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
			LOGE("cannot raise the open file limit from %llu: %m", (unsigned long long)rl.rlim_cur);
			return;
		}
	}
	if (want.rlim_cur < HL_NOFILE_WANT)
		LOGE("open file limit %llu (hard limit) is below the %d the agent may need",
		     (unsigned long long)want.rlim_cur, HL_NOFILE_WANT);
	else
		LOGD("open file limit raised from %llu to %llu", (unsigned long long)rl.rlim_cur,
		     (unsigned long long)want.rlim_cur);
}

static int daemon_pipe[2] = { -1, -1 };

static void daemonize(void)
{
	pid_t pid;
	char c;

	if (pipe2(daemon_pipe, O_CLOEXEC) < 0) {
		perror("pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid > 0) {
		close(daemon_pipe[1]);
		if (read(daemon_pipe[0], &c, 1) != 1)
			exit(1);
		exit(c == 'R' ? 0 : 1);
	}
	close(daemon_pipe[0]);
	setsid();
	int nul = open("/dev/null", O_RDWR);

	if (nul >= 0) {
		dup2(nul, 0);
		if (nul > 0)
			close(nul);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "device", required_argument, NULL, 'd' },
		{ "fake-luo", required_argument, NULL, 'F' },
		{ "fd-store", required_argument, NULL, 'S' },
		{ "keeper-socket", required_argument, NULL, 'K' },
		{ "keeper", no_argument, NULL, 'k' },
		{ "claim-timeout", required_argument, NULL, 'c' },
		{ "unclaimed", required_argument, NULL, 'u' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "barrier-uid", required_argument, NULL, 'b' },
		{ "daemonize", no_argument, NULL, 'D' },
		{ "kexec-via", required_argument, NULL, 'X' },
		{ "running-kernel", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct agent *a = calloc(1, sizeof(*a));
	const char *device = getenv("HUGELIVE_DEVICE");
	const char *sock = getenv("HUGELIVE_SOCKET");
	const char *fake = NULL, *fdstore = "auto";
	bool keeper = false, do_daemon = false;
	enum kexec_via via = KEXEC_VIA_AUTO;
	int inherited_listen = -1, opt;

	if (!a)
		return 1;
	g_agent = a;
	a->dev = -1;
	server_init(&a->srv);
	a->srv.ops = &agent_ops;
	a->srv.ctx = a;
	update_init(&a->upd);
	state_init_struct(&a->st);
	fdstore_init(&a->fds);
	a->claim_timeout_s = 300;
	a->start_ms = hl_now_ms();
	while ((opt = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'm': {
			unsigned v = 0;
			const char *p = optarg;

			for (; *p >= '0' && *p <= '7' && v <= 0777; p++)
				v = v * 8 + (unsigned)(*p - '0');
			if (!*optarg || *p || v > 0777) {
				fprintf(stderr, "hugelived: --socket-mode: '%s' is not an octal mode (0..0777)\n", optarg);
				return 2;
			}
			a->srv.sock_mode = v;
			break;
		}
		case 'd': device = optarg; break;
		case 'F': fake = optarg; break;
		case 'S': fdstore = optarg; break;
		case 'K': snprintf(a->fds.keeper_path, sizeof(a->fds.keeper_path), "%s", optarg); break;
		case 'k': keeper = true; break;
		case 'c':
		case 'i': {
			long long v;

			if (hl_parse_num(optarg, 1, 86400 * 365, &v) < 0) {
				fprintf(stderr, "hugelived: --%s: '%s' is not a positive number of seconds\n",
					opt == 'c' ? "claim-timeout" : "idle-timeout", optarg);
				return 2;
			}
			if (opt == 'c')
				a->claim_timeout_s = (int)v;
			else
				a->srv.idle_timeout_ms = v * 1000;
			break;
		}
		case 'u':
			if (!strcmp(optarg, "finish"))
				a->unclaimed = UNCLAIMED_FINISH;
			else if (!strcmp(optarg, "keep"))
				a->unclaimed = UNCLAIMED_KEEP;
			else {
				usage(stderr);
				return 2;
			}
			break;
		case 'b': {
			long long v;

			if (hl_parse_num(optarg, 0, UINT32_MAX - 1, &v) < 0 || a->upd.nallow >= HL_ARRAY_SIZE(a->upd.allow)) {
				fprintf(stderr, "hugelived: --barrier-uid: '%s' is not a uid (or more than %zu)\n", optarg,
					HL_ARRAY_SIZE(a->upd.allow));
				return 2;
			}
			a->upd.allow[a->upd.nallow++] = (uint32_t)v;
			break;
		}
		case 'D': do_daemon = true; break;
		case 'R':
			if (optarg[0] != '/' || strlen(optarg) > HL_MAX_PATH) {
				fprintf(stderr, "hugelived: --running-kernel: '%s' is not an absolute path\n", optarg);
				return 2;
			}
			snprintf(a->upd.running_kernel, sizeof(a->upd.running_kernel), "%s", optarg);
			break;
		case 'X':
			if (kexec_via_parse(optarg, &via) < 0) {
				fprintf(stderr, "hugelived: --kexec-via: '%s' is not auto, systemd or direct\n", optarg);
				return 2;
			}
			break;
		case 'v': hl_log_verbose++; break;
		case 'q': hl_log_verbose = 0; break;
		case 'V': printf("hugelived %s (protocol %d)\n", HL_VERSION, HL_PROTO_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (keeper)
		return keeper_main(a->fds.keeper_path);
	a->kexec_via = kexec_via_decide(via, sd_booted(), getenv("INVOCATION_ID") != NULL);
	if (via == KEXEC_VIA_SYSTEMD && a->kexec_via != KEXEC_VIA_SYSTEMD)
		LOGE("--kexec-via systemd, but systemd is not the init: the kexec will be direct");
	if (a->kexec_via == KEXEC_VIA_SYSTEMD && argv[0][0])
		/*
		 * systemd-shutdown's final SIGTERM/SIGKILL spares processes whose
		 * argv[0] starts with '@' (its convention for root storage
		 * daemons; SurviveFinalKillSignal= in the unit does the same on
		 * systemd >= 255): the session fds must be open at the kexec.
		 */
		argv[0][0] = '@';

	snprintf(a->srv.sock_path, sizeof(a->srv.sock_path), "%s", sock && *sock ? sock : HL_DEFAULT_SOCKET);
	if (fake)
		hl_backend_fake_init(&a->be, fake);
	else
		hl_backend_luo_init(&a->be, device && *device ? device : HL_DEFAULT_DEVICE);

	if (fdstore_parse_mode(fdstore, &a->fds.mode) < 0) {
		usage(stderr);
		return 2;
	}

	if (do_daemon)
		daemonize();

	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * SIGTERM and SIGINT only set a flag that the event loop checks before
	 * it waits. Unblocked, one that came between that check and
	 * epoll_wait() was lost until the next event (a stop under load took
	 * longer than 15 s). Blocked here, before any thread exists, they are
	 * delivered only inside the loop's epoll_pwait().
	 */
	{
		sigset_t term;

		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigaddset(&term, SIGINT);
		sigprocmask(SIG_BLOCK, &term, &a->srv.run_mask);
	}

	/* systemd socket activation: the listening socket is passed in */
	if (a->fds.mode == FDSTORE_SYSTEMD || getenv("LISTEN_FDS")) {
		char **names = NULL;
		int n = sd_listen_fds_with_names(0, &names);

		for (int i = 0; i < n; i++) {
			int fd = SD_LISTEN_FDS_START + i;

			if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0 && inherited_listen < 0)
				inherited_listen = fd;
		}
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}

	raise_nofile();
	/* Take back fds from the keeper / systemd FD store, or open the device. */
	if (fdstore_setup(&a->fds) < 0)
		goto fail;
	a->dev = fdstore_take(&a->fds, "dev");
	if (a->dev >= 0) {
		a->boot = BOOT_RESTARTED;
	} else {
		a->dev = a->be.open_dev(&a->be);
		/* a passing `hugelivectl check` (or another probe) may hold it for a moment */
		for (int i = 0; i < 30 && a->dev == -EBUSY; i++) {
			usleep(100 * 1000);
			a->dev = a->be.open_dev(&a->be);
		}
		if (a->dev < 0) {
			char who[512] = "";
			bool sd = false;

			if (a->dev == -EBUSY && hl_dev_holders(a->be.path, who, sizeof(who), &sd) > 0)
				LOGE("cannot open %s: %s: held by %s; %s", a->be.path, strerror(-a->dev), who,
				     sd ? HL_SYSTEMD_OWNS : "one process owns the device: stop it (another agent "
				     "or keeper?) before starting hugelived");
			else
				LOGE("cannot open %s: %s%s", a->be.path, strerror(-a->dev),
				     a->dev == -EBUSY ? " (another process owns it; is an agent or keeper running?)" :
				     a->dev == -ENOENT ? " (kernel without LUO, or booted without liveupdate=on)" : "");
			goto fail;
		}
		fdstore_put(&a->fds, "dev", a->dev);
	}
	if (state_init(a) < 0)
		goto fail;
	update_recover(a);
	a->hugetlb_support = a->be.hugetlb_supported(&a->be, a->dev);
	if (server_listen(&a->srv, inherited_listen) < 0)
		goto fail;
	a->fds.hook_ctx = a;
	a->fds.keeper_changed = keeper_changed;
	keeper_changed(a, -1, a->fds.keeper_fd);

	LOGI("ready: socket %s, backend %s (%s), boot %s, %d session(s), fd store %s, kexec via %s",
	     a->srv.sock_path, a->be.name, a->be.path, boot_kind_name(a->boot), a->sessions.count,
	     fdstore_mode_name(&a->fds), kexec_via_name(a->kexec_via));
	sd_notifyf(0, "READY=1\nSTATUS=serving %s", a->srv.sock_path);
	if (daemon_pipe[1] >= 0) {
		if (write(daemon_pipe[1], "R", 1) != 1) {
			/* parent gone; nothing to do */
		}
		close(daemon_pipe[1]);
		daemon_pipe[1] = -1;
	}

	server_run(&a->srv);
	LOGI("exiting (%s)", a->upd.exit_after_kexec ? "fake kexec done" : "signal");
	sd_notify(0, "STOPPING=1");
	server_shutdown(&a->srv);
	/*
	 * Session fds are deliberately not finished or dropped: the keeper or
	 * the systemd FD store still holds them, so a restarted agent finds
	 * every session intact.
	 */
	return a->exit_code;
fail:
	if (daemon_pipe[1] >= 0) {
		if (write(daemon_pipe[1], "F", 1) != 1) {
		}
	}
	sd_notifyf(0, "STATUS=failed to start\nERRNO=%d", errno);
	return 1;
}

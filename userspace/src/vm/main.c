/* SPDX-License-Identifier: MIT */
/*
 * hugelive-vm: run a QEMU/KVM guest whose RAM is a hugetlb memfd kept
 * across live updates of the host's kernel by hugelived.
 *
 *   hugelive-vm start --name NAME --kernel PATH [--initrd PATH] [--append ARGS]
 *       [--mem SIZE] [--page-size 2M|1G] [--cpus N] [--accel kvm|tcg] [--cpu MODEL]
 *       [--machine TYPE] [--qemu PATH] [--ram-fd N] [--socket PATH] [--run-dir DIR]
 *   hugelive-vm restore --name NAME [--qemu PATH] [--socket PATH] [--run-dir DIR]
 *
 * Both stay in the foreground while the guest runs. Exit status: 0 the
 * guest powered off, 1 failure, 2 bad usage or input, 3 no agent.
 */
#include "launch.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hugelive-vm start --name NAME --kernel PATH [--initrd PATH] [--append ARGS]\n"
		"           [--mem SIZE] [--page-size 2M|1G] [--cpus N] [--accel kvm|tcg] [--cpu MODEL]\n"
		"           [--machine TYPE] [--qemu PATH] [--ram-fd N] [--socket PATH] [--run-dir DIR]\n"
		"       hugelive-vm restore --name NAME [--qemu PATH] [--socket PATH] [--run-dir DIR]\n"
		"Runs a QEMU guest whose RAM is a hugetlb memfd preserved by hugelived: on an update\n"
		"it stops the guest and saves its device state, after the update `restore` continues it.\n");
}

static int copy(char *dst, size_t len, const char *src, const char *what)
{
	if (strlen(src) >= len) {
		fprintf(stderr, "hugelive-vm: %s too long\n", what);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },	{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },	{ "append", required_argument, NULL, 'a' },
		{ "mem", required_argument, NULL, 'm' },	{ "page-size", required_argument, NULL, 'p' },
		{ "cpus", required_argument, NULL, 'c' },	{ "accel", required_argument, NULL, 'A' },
		{ "cpu", required_argument, NULL, 'C' },	{ "machine", required_argument, NULL, 'M' },
		{ "qemu", required_argument, NULL, 'q' },	{ "ram-fd", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 's' },	{ "run-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },		{ NULL, 0, NULL, 0 },
	};
	struct launch_opts o = { .ram_fd = -1 };
	const char *cmd;
	int opt, bad = 0;
	char *end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (strcmp(cmd, "start") && strcmp(cmd, "restore")) {
		fprintf(stderr, "hugelive-vm: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	vm_cfg_defaults(&o.cfg);
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': bad |= copy(o.cfg.name, sizeof(o.cfg.name), optarg, "--name"); break;
		case 'k': bad |= copy(o.cfg.kernel, sizeof(o.cfg.kernel), optarg, "--kernel"); break;
		case 'i': bad |= copy(o.cfg.initrd, sizeof(o.cfg.initrd), optarg, "--initrd"); break;
		case 'a': bad |= copy(o.cfg.append, sizeof(o.cfg.append), optarg, "--append"); break;
		case 'A': bad |= copy(o.cfg.accel, sizeof(o.cfg.accel), optarg, "--accel"); break;
		case 'C': bad |= copy(o.cfg.cpu, sizeof(o.cfg.cpu), optarg, "--cpu"); break;
		case 'M': bad |= copy(o.cfg.machine, sizeof(o.cfg.machine), optarg, "--machine"); break;
		case 'q': bad |= copy(o.cfg.qemu, sizeof(o.cfg.qemu), optarg, "--qemu"); o.cfg_qemu_set = true; break;
		case 's': o.socket = optarg; break;
		case 'd': o.rundir = optarg; break;
		case 'm':
			if (vm_parse_size(optarg, &o.cfg.mem)) {
				fprintf(stderr, "hugelive-vm: --mem %s: a size such as 512M or 1G\n", optarg);
				bad = 1;
			}
			break;
		case 'p':
			if (vm_parse_size(optarg, &o.cfg.page)) {
				fprintf(stderr, "hugelive-vm: --page-size %s: 2M or 1G\n", optarg);
				bad = 1;
			}
			break;
		case 'c':
			errno = 0;
			o.cfg.smp = (int)strtol(optarg, &end, 10);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "hugelive-vm: --cpus %s: a number\n", optarg);
				bad = 1;
			}
			break;
		case 'r':
			errno = 0;
			o.ram_fd = (int)strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || o.ram_fd < 0) {
				fprintf(stderr, "hugelive-vm: --ram-fd %s: an open file descriptor number\n", optarg);
				bad = 1;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: bad = 1; break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hugelive-vm: unexpected argument '%s'\n", argv[optind]);
		bad = 1;
	}
	if (bad) {
		usage(stderr);
		return 2;
	}
	return !strcmp(cmd, "start") ? launch_start(&o) : launch_restore(&o);
}

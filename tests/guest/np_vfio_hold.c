// SPDX-License-Identifier: MIT
/*
 * np_vfio_hold: open np cards through VFIO the way libnp does and keep them
 * open until SIGTERM, so the guest test can check what the kernel does
 * while a process holds a card (module unload refused, unbind blocked,
 * telemetry still readable).
 *
 * Before holding, each card is checked through the VFIO device: the reset
 * the driver advertises works, and BAR0 answers with the np ID register.
 *
 * Usage: np_vfio_hold BDF...
 * Prints "np_vfio_hold: holding <n> cards" once every card is open.
 * Exit status: 0 after a clean release, 1 on any error (message on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "np_abi.h"

#define NP_HOLD_MAX_CARDS 64

static int np_group_of(const char *bdf, int *group)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
		 bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		fprintf(stderr,
			"np_vfio_hold: %s: no IOMMU group (%s); boot with "
			"intel_iommu=on\n",
			bdf, strerror(errno));
		return -1;
	}
	link[n] = '\0';
	base = strrchr(link, '/');
	*group = atoi(base ? base + 1 : link);
	return 0;
}

/* Check the card through the VFIO device before holding it. */
static int np_check_card(const char *bdf, int fd)
{
	struct vfio_device_info info = {.argsz = sizeof(info)};
	struct vfio_region_info reg = {.argsz = sizeof(reg),
				       .index = VFIO_PCI_BAR0_REGION_INDEX};
	uint32_t id;

	if (ioctl(fd, VFIO_DEVICE_GET_INFO, &info)) {
		fprintf(stderr, "np_vfio_hold: %s: VFIO_DEVICE_GET_INFO: %s\n",
			bdf, strerror(errno));
		return -1;
	}
	if (!(info.flags & VFIO_DEVICE_FLAGS_RESET)) {
		fprintf(stderr,
			"np_vfio_hold: %s: VFIO device flags %#x lack "
			"VFIO_DEVICE_FLAGS_RESET; np_vfio_pci must provide a "
			"reset\n",
			bdf, info.flags);
		return -1;
	}
	if (ioctl(fd, VFIO_DEVICE_RESET)) {
		fprintf(stderr, "np_vfio_hold: %s: VFIO_DEVICE_RESET: %s\n",
			bdf, strerror(errno));
		return -1;
	}
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &reg)) {
		fprintf(stderr, "np_vfio_hold: %s: BAR0 region info: %s\n", bdf,
			strerror(errno));
		return -1;
	}
	if (pread(fd, &id, sizeof(id), (off_t)reg.offset + NP_REG_ID) !=
	    sizeof(id)) {
		fprintf(stderr, "np_vfio_hold: %s: BAR0 read: %s\n", bdf,
			strerror(errno));
		return -1;
	}
	if (NP_ID_GET_MAGIC(id) != NP_ID_MAGIC) {
		fprintf(stderr,
			"np_vfio_hold: %s: NP_REG_ID reads %#010x, expected "
			"magic %#06x: not an np card\n",
			bdf, id, NP_ID_MAGIC);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int groups[NP_HOLD_MAX_CARDS], devices[NP_HOLD_MAX_CARDS];
	int container, ncards = argc - 1, sig, i;
	sigset_t set;

	if (ncards < 1 || ncards > NP_HOLD_MAX_CARDS) {
		fprintf(stderr, "usage: np_vfio_hold BDF... (1 to %d cards)\n",
			NP_HOLD_MAX_CARDS);
		return 1;
	}
	/* Block the signals before anything is open: sigwait() takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);

	container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0) {
		fprintf(stderr,
			"np_vfio_hold: /dev/vfio/vfio: %s; load the vfio "
			"module\n",
			strerror(errno));
		return 1;
	}
	for (i = 0; i < ncards; i++) {
		struct vfio_group_status status = {.argsz = sizeof(status)};
		const char *bdf = argv[i + 1];
		char path[64];
		int group;

		if (np_group_of(bdf, &group))
			return 1;
		snprintf(path, sizeof(path), "/dev/vfio/%d", group);
		groups[i] = open(path, O_RDWR);
		if (groups[i] < 0) {
			fprintf(stderr,
				"np_vfio_hold: %s: %s: %s; bind the card to "
				"np_vfio_pci\n",
				bdf, path, strerror(errno));
			return 1;
		}
		if (ioctl(groups[i], VFIO_GROUP_GET_STATUS, &status) ||
		    !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
			fprintf(stderr,
				"np_vfio_hold: %s: IOMMU group %d is not "
				"viable; bind every device in it to "
				"np_vfio_pci or vfio-pci\n",
				bdf, group);
			return 1;
		}
		if (ioctl(groups[i], VFIO_GROUP_SET_CONTAINER, &container)) {
			fprintf(stderr,
				"np_vfio_hold: %s: VFIO_GROUP_SET_CONTAINER: "
				"%s\n",
				bdf, strerror(errno));
			return 1;
		}
		/* The IOMMU type can only be set once a group is attached. */
		if (i == 0 &&
		    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
			fprintf(stderr,
				"np_vfio_hold: VFIO_SET_IOMMU(TYPE1v2): %s; "
				"load vfio_iommu_type1\n",
				strerror(errno));
			return 1;
		}
		devices[i] = ioctl(groups[i], VFIO_GROUP_GET_DEVICE_FD, bdf);
		if (devices[i] < 0) {
			fprintf(stderr,
				"np_vfio_hold: %s: VFIO_GROUP_GET_DEVICE_FD: "
				"%s\n",
				bdf, strerror(errno));
			return 1;
		}
		if (np_check_card(bdf, devices[i]))
			return 1;
	}
	printf("np_vfio_hold: holding %d cards\n", ncards);
	fflush(stdout);

	if (sigwait(&set, &sig)) {
		fprintf(stderr, "np_vfio_hold: sigwait failed\n");
		return 1;
	}
	for (i = 0; i < ncards; i++) {
		close(devices[i]);
		close(groups[i]);
	}
	close(container);
	return 0;
}

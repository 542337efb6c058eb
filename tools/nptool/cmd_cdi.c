// SPDX-License-Identifier: MIT
/*
 * cdi: a Container Device Interface spec (CNCF container-device-interface,
 * cdiVersion 0.6.0) for the cards, so that container runtimes (podman,
 * containerd, CRI-O) and Kubernetes device plugins hand cards to
 * containers by name: `podman run --device northpole.example/card=0`.
 *
 * A card in a container needs its IOMMU group's node /dev/vfio/<group>
 * and the VFIO container node /dev/vfio/vfio. Each card is a device twice,
 * by index and by PCI address; "all" holds every card.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nptool.h"
#include "sysfs.h"

#define CDI_VERSION "0.6.0"
#define CDI_KIND "northpole.example/card"

/* vendor (a DNS name) "/" class, per the CDI spec's kind syntax */
static bool kind_valid(const char *kind)
{
	const char *slash = strchr(kind, '/');
	size_t vlen, clen;

	if (!slash)
		return false;
	vlen = (size_t)(slash - kind);
	clen = strlen(slash + 1);
	if (!vlen || vlen > 253 || !clen || clen > 63)
		return false;
	for (const char *p = kind; p < slash; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') &&
		    *p != '.' && *p != '-')
			return false;
	for (const char *p = slash + 1; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '.' && *p != '-' &&
		    *p != '_')
			return false;
	return true;
}

static void node(struct npt_json *j, const char *path)
{
	npt_json_obj_open(j);
	npt_json_kstr(j, "path", path);
	npt_json_obj_close(j);
}

static void group_node(struct npt_json *j, int group)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	node(j, path);
}

static void device(struct npt_json *j, const char *kind, const char *name,
		   const struct npt_pci *cards, size_t first, size_t n)
{
	char key[320];

	npt_json_obj_open(j);
	npt_json_kstr(j, "name", name);
	if (n == 1) {
		npt_json_key(j, "annotations");
		npt_json_obj_open(j);
		snprintf(key, sizeof(key), "%.*s/pci-address",
			 (int)(strchr(kind, '/') - kind), kind);
		npt_json_kstr(j, key, cards[first].bdf);
		npt_json_obj_close(j);
	}
	npt_json_key(j, "containerEdits");
	npt_json_obj_open(j);
	npt_json_key(j, "deviceNodes");
	npt_json_arr_open(j);
	for (size_t i = first; i < first + n; i++) {
		bool dup = false;

		/* cards sharing a group share its node */
		for (size_t k = first; k < i; k++)
			dup |= cards[k].iommu_group == cards[i].iommu_group;
		if (!dup)
			group_node(j, cards[i].iommu_group);
	}
	npt_json_arr_close(j);
	npt_json_obj_close(j);
	npt_json_obj_close(j);
}

static void spec_json(struct npt_json *j, const char *kind,
		      const struct npt_pci *cards, size_t n)
{
	npt_json_obj_open(j);
	npt_json_kstr(j, "cdiVersion", CDI_VERSION);
	npt_json_kstr(j, "kind", kind);
	npt_json_key(j, "devices");
	npt_json_arr_open(j);
	for (size_t i = 0; i < n; i++) {
		char idx[24];

		snprintf(idx, sizeof(idx), "%zu", i);
		device(j, kind, idx, cards, i, 1);
		device(j, kind, cards[i].bdf, cards, i, 1);
	}
	device(j, kind, "all", cards, 0, n);
	npt_json_arr_close(j);
	/* applied once whichever devices a container gets */
	npt_json_key(j, "containerEdits");
	npt_json_obj_open(j);
	npt_json_key(j, "env");
	npt_json_arr_open(j);
	npt_json_str(j, "NP_DEVICES=vfio:all");
	npt_json_arr_close(j);
	npt_json_key(j, "deviceNodes");
	npt_json_arr_open(j);
	node(j, "/dev/vfio/vfio");
	npt_json_arr_close(j);
	npt_json_obj_close(j);
	npt_json_obj_close(j);
}

/* Write the spec to path through a temporary file and rename(2), so a
 * runtime never reads half a spec. */
static int write_spec(struct npt *t, const char *path, const char *kind,
		      const struct npt_pci *cards, size_t n)
{
	char tmp[PATH_MAX];
	struct npt_json *j;
	FILE *f;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		npt_err(t, "cdi: output path '%s' is too long", path);
		return NPT_EXIT_USAGE;
	}
	fd = mkstemp(tmp);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		npt_err(t,
			"cdi: cannot create '%s': %s; is the directory "
			"there and writable?",
			tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NPT_EXIT_DEVERR;
	}
	if (npt_json_new(f, true, &j)) {
		fclose(f);
		unlink(tmp);
		return NPT_EXIT_DEVERR;
	}
	spec_json(j, kind, cards, n);
	npt_json_free(j);
	if (fchmod(fd, 0644) || ferror(f))
		err = errno ? errno : EIO;
	if (fclose(f) && !err)
		err = errno;
	if (!err && rename(tmp, path))
		err = errno;
	if (err) {
		unlink(tmp);
		npt_err(t, "cdi: cannot write '%s': %s", path, strerror(err));
		return NPT_EXIT_DEVERR;
	}
	return NPT_EXIT_OK;
}

int npt_cmd_cdi(struct npt *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"kind", required_argument, NULL, 'k'},
		{0},
	};
	const char *out = NULL, *kind = CDI_KIND;
	struct npt_pci *cards;
	size_t n;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:k:", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'k':
			kind = optarg;
			break;
		default:
			return npt_usage(t, "cdi: bad option");
		}
	}
	if (optind < argc)
		return npt_usage(t, "cdi: unexpected argument '%s'",
				 argv[optind]);
	if (!kind_valid(kind))
		return npt_usage(t,
				 "cdi: kind '%s' is not VENDOR/CLASS with "
				 "VENDOR a DNS name (e.g. %s)",
				 kind, CDI_KIND);
	rc = npt_sysfs_cards(t, &cards, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (cards[i].iommu_group >= 0 &&
		    (!strcmp(cards[i].driver, NPT_DRIVER) ||
		     !strcmp(cards[i].driver, "vfio-pci")))
			continue;
		npt_err(t,
			"cdi: card %s is not usable through VFIO (driver "
			"'%s', IOMMU group %d); 'nptool doctor' prints the fix",
			cards[i].bdf,
			cards[i].driver[0] ? cards[i].driver : "none",
			cards[i].iommu_group);
		free(cards);
		return NPT_EXIT_FAIL;
	}
	rc = out ? write_spec(t, out, kind, cards, n) : NPT_EXIT_OK;
	if (t->j) {
		npt_json_key(t->j, "path");
		if (out)
			npt_json_str(t->j, out);
		else
			npt_json_null(t->j);
		npt_json_key(t->j, "spec");
		spec_json(t->j, kind, cards, n);
	} else if (!out) {
		struct npt_json *j;

		if (!npt_json_new(stdout, true, &j)) {
			spec_json(j, kind, cards, n);
			npt_json_free(j);
		}
	} else if (!rc) {
		printf("wrote %s: %zu card%s as %s=0..%zu, =<PCI address>, "
		       "=all\n",
		       out, n, n == 1 ? "" : "s", kind, n - 1);
	}
	free(cards);
	return rc;
}

// SPDX-License-Identifier: MIT
/*
 * verify: load a model onto the cards, then read every card's resident
 * weights back by DMA and compare their CRC32C with the one taken of the
 * host copy at load time (np_pipeline_verify). --inject puts a fault into
 * an emulated card between the load and the check, to see what the check
 * reports for it (docs/hardware.md, "Fault injection"). Exit 0 only if
 * every card's weights are intact.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <np/pipeline.h>
#include <np/recover.h>

#include "dev.h"

#define VERIFY_MAX_INJECT 16

/* One verify command: its options, the cards and the model on them. */
struct verify {
	struct npt *t;
	const char *model;
	struct npt_inject inj[VERIFY_MAX_INJECT];
	unsigned int n_inj;
	struct np_pipeline_opts po;
	struct np_pipeline *p;
	struct np_ctx *ctx;
};

static int verify_parse(struct verify *v, int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"cards", required_argument, NULL, 'c'},
		{"inject", required_argument, NULL, 'i'},
		{0},
	};
	struct npt *t = v->t;
	char *end;
	int c, rc;

	v->model = getenv("NP_MODEL");
	if (!v->model || !*v->model)
		v->model = NPT_DEFAULT_MODEL;
	while ((c = getopt_long(argc, argv, "m:c:i:", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			v->model = optarg;
			break;
		case 'c':
			errno = 0;
			v->po.n_cards = (uint32_t)strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg)
				return npt_usage(t,
						 "--cards: '%s' is not a "
						 "number",
						 optarg);
			break;
		case 'i':
			if (v->n_inj == VERIFY_MAX_INJECT)
				return npt_usage(t, "at most %d --inject",
						 VERIFY_MAX_INJECT);
			rc = npt_parse_inject(t, optarg,
					      "3:sram-flip:addr=0x1000,bits=2",
					      &v->inj[v->n_inj++]);
			if (rc)
				return rc;
			break;
		default:
			return npt_usage(t, "verify: bad option");
		}
	}
	if (optind < argc)
		return npt_usage(t, "verify: unexpected '%s'", argv[optind]);
	return NPT_EXIT_OK;
}

/* The model onto the cards, then the --inject faults into them. */
static int verify_setup(struct verify *v)
{
	struct npt *t = v->t;
	int ret;

	ret = np_model_load(v->ctx, v->model, &v->po, &v->p);
	if (ret) {
		npt_err(t, "cannot load %s onto %s: %s", v->model, t->spec,
			strerror(-ret));
		return ret == -ENOENT || ret == -EINVAL || ret == -E2BIG ?
			       NPT_EXIT_USAGE :
			       npt_errno_exit(ret);
	}
	for (unsigned int i = 0; i < v->n_inj; i++) {
		struct npt_inject *in = &v->inj[i];
		int rc = npt_card_find(t, v->ctx, "--inject", in->card,
				       &in->idx);

		if (rc)
			return rc;
		ret = in->idx < np_pipeline_cards(v->p) ?
			      np_card_inject(np_ctx_card(v->ctx, in->idx),
					     in->fault) :
			      -EINVAL;
		if (ret) {
			npt_err(t, "inject '%s' into card %s: %s%s", in->fault,
				in->card,
				in->idx < np_pipeline_cards(v->p) ?
					strerror(-ret) :
					"the model does not use it",
				ret == -EOPNOTSUPP ?
					" (real cards: inject on the QEMU "
					"monitor, qom-set ... inject-fault)" :
					"");
			return ret == -EOPNOTSUPP ? NPT_EXIT_UNAVAIL :
						    NPT_EXIT_USAGE;
		}
	}
	return NPT_EXIT_OK;
}

/* Check card i's weights and report them; updates the exit code rc. */
static int verify_card(struct verify *v, uint32_t i, int rc)
{
	struct npt *t = v->t;
	struct np_card *card = np_ctx_card(v->ctx, i);
	uint32_t crc = 0;
	const char *verdict;
	int ret = np_pipeline_verify(v->p, i, &crc);

	verdict = !ret ? "intact" : ret == -EBADMSG ? "corrupt" : "unreadable";
	if (ret)
		npt_err(t, "card %u (%s): weights %s%s%s", i,
			np_card_name(card), verdict,
			ret == -EBADMSG ? "" : ": ",
			ret == -EBADMSG ? "" : strerror(-ret));
	if (ret == -EBADMSG && !rc)
		rc = NPT_EXIT_FAIL;
	else if (ret && ret != -EBADMSG)
		rc = NPT_EXIT_DEVERR;
	if (t->j) {
		npt_json_obj_open(t->j);
		npt_json_kuint(t->j, "index", i);
		npt_json_kstr(t->j, "name", np_card_name(card));
		npt_json_kstr(t->j, "weights", verdict);
		if (ret && ret != -EBADMSG)
			npt_json_knull(t->j, "crc32c");
		else
			npt_json_kuint(t->j, "crc32c", crc);
		npt_json_obj_close(t->j);
	} else if (!ret || ret == -EBADMSG) {
		printf("card %-3u %-16s crc32c %08x  %s\n", i,
		       np_card_name(card), crc, verdict);
	} else {
		printf("card %-3u %-16s %s\n", i, np_card_name(card), verdict);
	}
	return rc;
}

int npt_cmd_verify(struct npt *t, int argc, char **argv)
{
	struct verify v = {.t = t};
	int rc = verify_parse(&v, argc, argv);

	if (rc)
		return rc;
	rc = npt_open(t, NULL, &v.ctx);
	if (rc)
		return rc;
	rc = verify_setup(&v);
	if (rc)
		goto out;
	if (t->j) {
		npt_json_kstr(t->j, "model", v.model);
		npt_json_key(t->j, "cards");
		npt_json_arr_open(t->j);
	}
	for (uint32_t i = 0; i < np_pipeline_cards(v.p); i++)
		rc = verify_card(&v, i, rc);
	if (t->j)
		npt_json_arr_close(t->j);
out:
	np_pipeline_destroy(v.p);
	np_close(v.ctx);
	return rc;
}

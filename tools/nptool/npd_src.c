// SPDX-License-Identifier: MIT
/*
 * The cards of a running npd, for status, top and exporter. Emulated
 * cards exist only inside the process that created them, so the cards
 * npd serves from can be seen only through npd: its GET /v1/np/cards
 * (tools/npd/engine.c) lists every card with its state, telemetry and use
 * registers under the field names nptool uses, and the time each card of
 * the pipeline had a frame to compute. Fetched with libcurl, read with
 * jansson.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"

#define NPD_DEFAULT_URL "http://127.0.0.1:8080"
#define NPD_CONNECT_MS 300L /* loopback: refused or accepted at once */
#define NPD_TIMEOUT_MS 3000L

struct npt_npd {
	char url[512];
	long pid;
	char devices[64];
	char model[128];
	json_t *doc; /* the last answer */
};

const char *npt_npd_url(void)
{
	const char *u = getenv("NP_NPD");

	if (!u)
		return NPD_DEFAULT_URL;
	return *u && strcmp(u, "off") ? u : NULL;
}

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
	FILE *f = opaque;

	return fwrite(p, size, n, f);
}

/* GET url/v1/np/cards into d->doc: 0, or -errno (no npd there). */
static int fetch(struct npt_npd *d)
{
	char full[640], *body = NULL;
	size_t len = 0;
	long code = 0;
	FILE *f = open_memstream(&body, &len);
	CURL *c = curl_easy_init();
	CURLcode cr;
	json_t *j;

	if (!f || !c) {
		if (f)
			fclose(f);
		free(body);
		curl_easy_cleanup(c);
		return -ENOMEM;
	}
	snprintf(full, sizeof(full), "%s/v1/np/cards", d->url);
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, NPD_CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, NPD_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cr = curl_easy_perform(c);
	if (cr == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	fclose(f);
	j = cr == CURLE_OK && code == 200 ? json_loadb(body, len, 0, NULL) :
					    NULL;
	free(body);
	/* an answer from something else on that port is no npd */
	if (!json_is_array(json_object_get(j, "cards")) ||
	    !json_is_string(json_object_get(j, "process")) ||
	    strcmp(json_string_value(json_object_get(j, "process")), "npd")) {
		json_decref(j);
		return -ENOENT;
	}
	json_decref(d->doc);
	d->doc = j;
	return 0;
}

int npt_npd_open(const char *url, struct npt_npd **out, size_t *n)
{
	static int curl_ready;
	struct npt_npd *d;
	const char *s;
	int rc;

	*out = NULL;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return -ENOMEM;
		curl_ready = 1;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snprintf(d->url, sizeof(d->url), "%s", url);
	/* "host:port" and "http://host:port/" alike */
	while (*d->url && d->url[strlen(d->url) - 1] == '/')
		d->url[strlen(d->url) - 1] = 0;
	rc = fetch(d);
	if (rc) {
		free(d);
		return rc;
	}
	d->pid = (long)json_integer_value(json_object_get(d->doc, "pid"));
	s = json_string_value(json_object_get(d->doc, "devices"));
	snprintf(d->devices, sizeof(d->devices), "%s", s ? s : "");
	s = json_string_value(json_object_get(d->doc, "model"));
	snprintf(d->model, sizeof(d->model), "%s", s ? s : "");
	*n = json_array_size(json_object_get(d->doc, "cards"));
	*out = d;
	return 0;
}

void npt_npd_close(struct npt_npd *d)
{
	if (!d)
		return;
	json_decref(d->doc);
	free(d);
}

const char *npt_npd_devices(const struct npt_npd *d)
{
	return d->devices;
}

const char *npt_npd_model(const struct npt_npd *d)
{
	return d->model;
}

long npt_npd_pid(const struct npt_npd *d)
{
	return d->pid;
}

const char *npt_npd_where(const struct npt_npd *d)
{
	return d->url;
}

static json_t *card(const struct npt_npd *d, size_t i)
{
	return json_array_get(json_object_get(d->doc, "cards"), i);
}

const char *npt_npd_card_str(const struct npt_npd *d, size_t i, const char *key)
{
	const char *s = json_string_value(json_object_get(card(d, i), key));

	return s ? s : "";
}

void npt_npd_sample(struct npt_npd *d, struct npt_sample *out, size_t n)
{
	int rc = fetch(d);

	for (size_t i = 0; i < n; i++) {
		json_t *c = card(d, i), *v;

		memset(&out[i], 0, sizeof(out[i]));
		out[i].pipe_busy_ns = -1;
		/* npd went away, or lists fewer cards now */
		if (rc || !c) {
			out[i].err = rc ? rc : -ENODEV;
			continue;
		}
		snprintf(out[i].tl.state, sizeof(out[i].tl.state), "%s",
			 npt_npd_card_str(d, i, "state"));
		for (unsigned int f = 0; f < NPT_TF_COUNT; f++) {
			v = json_object_get(c, npt_tf_key(f));
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				continue;
			out[i].tl.v[f] = (uint64_t)json_integer_value(v);
			out[i].tl.valid |= 1u << f;
		}
		v = json_object_get(c, "pipeline_busy_ns");
		if (json_is_integer(v))
			out[i].pipe_busy_ns = json_integer_value(v);
	}
}

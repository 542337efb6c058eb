/* SPDX-License-Identifier: MIT */
/*
 * Tokenizer internals shared by tok.c (loading, decoding), tok_special.c
 * (special and user-defined tokens in text), tok_spm.c and tok_bpe.c
 * (encoding of each kind), tok_pre.c (BPE pre-tokenizers) and tok_train.c
 * (training).
 */
#ifndef NPIM_TOK_H
#define NPIM_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "npim.h"

/* tokenizer.ggml.token_type values */
#define TOK_TYPE_NORMAL 1
#define TOK_TYPE_UNKNOWN 2
#define TOK_TYPE_CONTROL 3
#define TOK_TYPE_USER_DEFINED 4
#define TOK_TYPE_UNUSED 5
#define TOK_TYPE_BYTE 6

extern const char npim_spm_space[]; /* U+2581, SentencePiece's space */

struct np_tok {
	int kind;
	uint32_t n;
	char **text;
	size_t *len;
	float *score;
	int32_t *type;
	struct npim_map *ids;
	struct npim_map *ranks; /* BPE: "left right" -> rank */
	int32_t byte_id[256]; /* SPM <0xXX>, BPE byte char */
	uint32_t unicode_of_byte[256]; /* BPE */
	int32_t bos, eos, unk;
	int add_space_prefix;
	int pre; /* BPE: npim_pre_find() index */
	int32_t *special; /* control, user-defined, unknown: longest first */
	uint32_t n_special;
};

/* GPT-2's byte -> code point map of byte-level BPE */
void npim_bpe_byte_map(uint32_t map[256]);
/* UTF-8 of a code point below 0x10000 into out; its length */
size_t npim_utf8_put(uint32_t cp, char *out);

/* Encoder output: ids beyond cap are counted, not stored */
struct npim_tok_out {
	int32_t *ids;
	size_t cap, n;
};

void npim_tok_out_put(struct npim_tok_out *o, int32_t id);
/* Byte tokens of s (the unknown token for a byte without one);
 * -EILSEQ when neither exists */
int npim_tok_out_bytes(const struct np_tok *t, struct npim_tok_out *o,
		       const char *s, size_t n);

/* Encoders of each kind: 0, -ENOMEM, -EILSEQ. SPM prefixes a space when
 * space_prefix (the vocabulary's add_space_prefix at the text's start or
 * after a special token). */
int npim_spm_encode(const struct np_tok *t, const char *text, size_t len,
		    int space_prefix, struct npim_tok_out *o);
int npim_bpe_encode(const struct np_tok *t, const char *text, size_t len,
		    struct npim_tok_out *o);

/* BPE pre-tokenizers (tok_pre.c), by tokenizer.ggml.pre name */
#define NPIM_PRE_GPT2 0 /* the rule of a vocabulary without the key */
int npim_pre_find(const char *name, size_t n); /* index or -1 */
const char *npim_pre_name(int pre);
int npim_pre_ignore_merges(int pre);
/* "gpt-2, mpt, ..." for error messages */
void npim_pre_list(char *buf, size_t cap);
/* The pieces of text: their end offsets, ascending, the last one len, in
 * a malloc()ed *ends (NULL for empty text); 0, -E2BIG (4 GiB of text or
 * more), -ENOMEM */
int npim_pre_split(int pre, const char *text, size_t len, size_t **ends,
		   size_t *n);

/* Text split at special tokens (tok_special.c): a fragment is raw text
 * [off, off + len) when id is -1, else the token id */
struct npim_frag {
	size_t off, len;
	int32_t id;
};
/* Cache the special tokens of t (t->special); 0 or -ENOMEM */
int npim_special_init(struct np_tok *t);
/* User-defined tokens always, control and unknown ones with
 * parse_special; a malloc()ed *frags; 0 or -ENOMEM */
int npim_special_split(const struct np_tok *t, const char *text, size_t len,
		       int parse_special, struct npim_frag **frags, size_t *n);

#endif /* NPIM_TOK_H */

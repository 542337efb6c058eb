/* SPDX-License-Identifier: MIT */
/*
 * Tokenizer internals shared by tok.c (loading, decoding), tok_spm.c and
 * tok_bpe.c (encoding of each kind) and tok_train.c (training).
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

/* Encoders of each kind: 0, -ENOMEM, -EILSEQ */
int npim_spm_encode(const struct np_tok *t, const char *text, size_t len,
		    struct npim_tok_out *o);
int npim_bpe_encode(const struct np_tok *t, const char *text, size_t len,
		    struct npim_tok_out *o);
/* GPT-2 pre-tokenizer: the length of the piece starting at p */
size_t npim_gpt2_piece(const unsigned char *p, size_t len);

#endif /* NPIM_TOK_H */

// SPDX-License-Identifier: MIT
/*
 * Weight quantisation primitives (docs/numerics.md "Weights"): per-row
 * scales, round-half-away rounding and real factors as integer multipliers
 * with shifts.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "npim.h"

float np_quant_row_scale(const float *w, size_t n, int bits)
{
	float amax = 0;

	for (size_t i = 0; i < n; i++) {
		float a = fabsf(w[i]);

		amax = a > amax ? a : amax;
	}
	if (amax == 0.0f)
		return 1.0f;
	if (bits == 2) {
		/* levels -2..1: the scale of least squared error among
		 * amax * k / 16, k = 4..16 */
		float best = amax / 2.0f;
		double best_err = INFINITY;

		for (int k = 16; k >= 4; k--) {
			float sc = amax * (float)k / 16.0f, inv = 1.0f / sc;
			double err = 0;

			for (size_t i = 0; i < n; i++) {
				float q = rintf(w[i] * inv);

				q = q < -2.0f ? -2.0f : q > 1.0f ? 1.0f : q;
				err += (double)(w[i] - q * sc) *
				       (w[i] - q * sc);
			}
			if (err < best_err) {
				best_err = err;
				best = sc;
			}
		}
		return best;
	}
	return amax / (bits == 4 ? 7.0f : 127.0f);
}

void np_quant_row(const float *w, size_t n, float scale, int bits, int8_t *q)
{
	int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
	float inv = 1.0f / scale;

	for (size_t i = 0; i < n; i++) {
		/* round half away from zero, then saturate; branch free */
		float v = w[i] * inv, a = fabsf(v);
		int t, neg = v < 0;

		a = a < 255.0f ? a : 255.0f;
		t = (int)a;
		t += a - (float)t >= 0.5f;
		t = (t ^ -neg) + neg;
		t = t < lo ? lo : t;
		q[i] = (int8_t)(t > hi ? hi : t);
	}
}

int np_quant_multiplier(double f, int32_t *m, int32_t *shift)
{
	int e;
	double fr;
	int64_t mm;
	int sh;

	if (!(f >= 0) || !isfinite(f))
		return -ERANGE;
	if (f == 0) {
		*m = 0;
		*shift = 0;
		return 0;
	}
	fr = frexp(f, &e); /* f = fr * 2^e, fr in [0.5, 1) */
	mm = llround(fr * 2147483648.0);
	sh = 31 - e;
	if (mm == 2147483648LL) {
		mm = 1073741824LL;
		sh--;
	}
	if (sh < 0)
		return -ERANGE;
	if (sh > 62) {
		mm = llround(ldexp(f, 62));
		sh = 62;
		if (mm == 0)
			return -ERANGE;
	}
	*m = (int32_t)mm;
	*shift = sh;
	return 0;
}

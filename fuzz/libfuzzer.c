// SPDX-License-Identifier: MIT
/* libFuzzer entry point: NP_FUZZ_TARGET names the harness (np_fuzz.h). */
#include "np_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return NP_FUZZ_TARGET(data, size);
}

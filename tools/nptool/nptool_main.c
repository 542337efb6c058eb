// SPDX-License-Identifier: MIT
/* nptool's entry point; the program is npt_main() (main.c), which the CLI
 * fuzzer (fuzz/cli.c) calls in-process. */
#include "nptool.h"

int main(int argc, char **argv)
{
	return npt_main(argc, argv);
}

// bulwark-loadgen: see bench/loadgen/README.md.
#include "bench/loadgen/generator.h"

int main(int argc, char** argv) { return bulwark::bench::runCommandLine(argc, argv); }

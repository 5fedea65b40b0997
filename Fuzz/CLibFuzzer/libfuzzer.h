// The one libFuzzer entry point the fuzz driver calls. The library itself is the
// compiler's runtime (libclang_rt.fuzzer), linked by -sanitize=fuzzer.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Parses libFuzzer's options from argc/argv and fuzzes `callback` until a limit or a crash.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

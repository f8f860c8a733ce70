/*
 * asan_options.c - ASan's defaults for the libFuzzer targets, linked into
 * each of them by `make fuzz` (ASAN_OPTIONS in the environment still wins).
 *
 * quarantine_size_mb=64 instead of ASan's 256: a freed block waits in the
 * quarantine before its memory is reused, so that a dangling pointer hits
 * poisoned memory. One input of these targets frees about 2 MiB at most
 * (measured over their grown corpora; writes are capped at 1 MiB and
 * 512 KiB per input), so 64 MiB still holds everything an input freed
 * until long after the input ended, and nothing an input allocates
 * outlives it. What the smaller quarantine saves is cycling 256 MiB
 * through the caches and page tables: a tenth of fuzz_engine's time.
 */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
	return "quarantine_size_mb=64";
}

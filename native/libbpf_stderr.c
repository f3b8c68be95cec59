/*
 * Debian's libbpf.a is built without -fPIC. Exactly one of its relocations cannot go into a
 * shared object: a PC-relative reference to `stderr` in libbpf's default print callback
 * (checked with `readelf -r` over every member of the archive). Defining a hidden `stderr`
 * here resolves it inside sockeye.node; a constructor points it at the C library's stream, so
 * libbpf still prints where it would. No <stdio.h> here: it declares stderr differently.
 */
#include <dlfcn.h>

struct _IO_FILE;
__attribute__((visibility("hidden"))) struct _IO_FILE *stderr;

__attribute__((constructor)) static void bind_libc_stderr(void)
{
	struct _IO_FILE **libc_stderr = dlsym(RTLD_DEFAULT, "stderr");
	if (libc_stderr)
		stderr = *libc_stderr;
}

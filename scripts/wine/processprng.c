/* bcryptprimitives.dll for Wine 8, which lacks it: Rust's standard library (1.78 and
 * later) takes its random bytes from ProcessPrng there. This one fills the buffer from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. Built and installed into
 * the test's Wine prefix by scripts/windows.sh; never part of siprot. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

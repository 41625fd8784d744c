/*
 * banned.h - functions that truncate silently, overflow, or keep hidden
 * state. Included last by every lib/ and cmd/ source, so a use is a
 * compile error.
 */
#ifndef ORCH_BANNED_H
#define ORCH_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_orch

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)
#undef gmtime
#define gmtime(x) BANNED(gmtime)
#undef localtime
#define localtime(x) BANNED(localtime)

#endif

/* Small text helpers shared by the config loader and the CLI. */
#ifndef VKTRAIN_TEXT_H
#define VKTRAIN_TEXT_H

#include <stddef.h>

/* Levenshtein distance of two short words, for "did you mean" hints ((size_t)-1 past 63
 * characters). */
size_t vkt_edit_distance(const char *a, const char *b);

#endif

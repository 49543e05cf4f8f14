/* nmsyms.h — what a built object references, for the structural fence
 * tests (test_fence, test_mutation_fence): the undefined symbols of an
 * object as nm lists them, and exact or prefix lookups in that list. */
#ifndef FH_TEST_NMSYMS_H
#define FH_TEST_NMSYMS_H

/* Undefined symbols of obj (nm -u, LC_ALL=C), one per line; malloc'd (the
 * caller frees), or NULL when nm fails. */
char *nmsyms_undefined(const char *obj);

/* 1 if list names sym exactly (a version suffix "@..." allowed), else 0. */
int nmsyms_has(const char *list, const char *sym);

/* 1 if a symbol in list starts with prefix, else 0. */
int nmsyms_has_prefix(const char *list, const char *prefix);

#endif

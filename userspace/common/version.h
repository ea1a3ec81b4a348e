/* The version every binary reports (--version, xturn_build_info): `git
 * describe` of the tree it was built from, set by the Makefile. */
#ifndef XT_VERSION_H
#define XT_VERSION_H

const char *xt_version(void);

#endif

/* provenance.h — where a result came from: the git commit of the working directory (with a
 * "+dirty" mark when tracked files differ from it), shared by run files and bench results. */
#ifndef NORMBENCH_PROVENANCE_H
#define NORMBENCH_PROVENANCE_H

#include <stddef.h>

/* "<40 hex digits>", "<40 hex digits>+dirty", or "unknown" (not a checkout, no git). */
void provenance_git_commit(char *out, size_t len);

#endif

/* provenance.c — git commit of the working directory (see provenance.h). */
#include "provenance.h"

#include <stdio.h>
#include <string.h>

void provenance_git_commit(char *out, size_t len) {
    snprintf(out, len, "unknown");
    FILE *p = popen("git rev-parse HEAD 2>/dev/null", "r");
    if (!p) return;
    char line[128] = "";
    int ok = fgets(line, sizeof line, p) && strspn(line, "0123456789abcdef") == 40;
    pclose(p);
    if (!ok) return;
    p = popen("git status --porcelain --untracked-files=no 2>/dev/null | head -1", "r");
    char change[8] = "";
    int dirty = p && fgets(change, sizeof change, p) && change[0];
    if (p) pclose(p);
    snprintf(out, len, "%.40s%s", line, dirty ? "+dirty" : "");
}

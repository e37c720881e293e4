#include "util/identifiers.h"

#include <errno.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/strv.h"

static bool is_alnum(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool matches(const char *s)
{
        /* Runs of alphanumerics separated by single [._-]; no leading, trailing or doubled separators. */
        bool need_alnum = true;
        for (; *s; s++) {
                if (is_alnum(*s))
                        need_alnum = false;
                else if ((*s == '.' || *s == '_' || *s == '-') && !need_alnum)
                        need_alnum = true;
                else
                        return false;
        }
        return !need_alnum;
}

bool identifier_is_valid(const char *s)
{
        return s && *s && strlen(s) <= IDENTIFIER_MAX_LENGTH && matches(s);
}

int identifier_validate(const char *s, struct error **err)
{
        if (!s || !*s)
                return error_set(err, EINVAL, "identifier must not be empty");
        if (strlen(s) > IDENTIFIER_MAX_LENGTH) {
                _cleanup_free_ char *q = str_go_quote(s);
                return error_set(err, EINVAL, "identifier %s greater than maximum length (%d characters)", q,
                                 IDENTIFIER_MAX_LENGTH);
        }
        if (!matches(s)) {
                _cleanup_free_ char *q = str_go_quote(s);
                return error_set(err, EINVAL, "identifier %s must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$",
                                 q);
        }
        return 0;
}

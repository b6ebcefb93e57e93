#!/bin/sh
{#- sshd's AuthorizedKeysCommand when the ssh and ldap add-ons both run (docs/access.md). A .sh
    template: every value below is one single-quoted shell word. #}
# Rendered by sparkvisor for role {{ role }} on every start: change the ldap.* settings, not this file.
# Run by sshd as user nslcd with the login name ($1) and the injected keys file for it ($2): prints
# those keys, then, for an account that is not local, the ssh public keys the directory holds for
# it. Always exits 0: sshd drops every key a failing command printed, and an unreachable directory
# must not lock the Spark user out.
user="$1"
injected="$2"
uri={{ ldap.uri }}
base={{ ldap.base }}
binddn={{ ldap.binddn }}
cacert={{ ldap.tls_cacert }}
users={{ ldap.passwd_filter }}
name_attr={{ ldap.name_attr }}
key_attr={{ ldap.ssh_key_attr }}
bindpw=/etc/sparkvisor/ldap-bindpw

[ -f "$injected" ] && cat -- "$injected"
[ -n "$key_attr" ] || exit 0
# Local accounts (the Spark user) never come from the directory.
getent -s files passwd "$user" >/dev/null && exit 0

# The name as a filter value (RFC 4515): \ * ( ) escaped.
name=$(printf '%s' "$user" | sed -e 's/\\/\\5c/g' -e 's/\*/\\2a/g' -e 's/(/\\28/g' -e 's/)/\\29/g')
set -- -LLL -x -o ldif-wrap=no -o nettimeout=5 -l 10 -H "$uri"
[ -n "$base" ] && set -- "$@" -b "$base"
[ -n "$binddn" ] && [ -s "$bindpw" ] && set -- "$@" -D "$binddn" -y "$bindpw"
if [ -n "$cacert" ]; then
    LDAPTLS_CACERT="$cacert" LDAPTLS_REQCERT=demand
    export LDAPTLS_CACERT LDAPTLS_REQCERT
fi
want=$(printf '%s' "$key_attr" | tr 'A-Z' 'a-z')
ldapsearch "$@" "(&$users($name_attr=$name))" "$key_attr" 2>/dev/null |
    while IFS= read -r line; do
        attr=$(printf '%s' "${line%%:*}" | tr 'A-Z' 'a-z')
        [ "$attr" = "$want" ] || continue
        value="${line#*:}"
        case "$value" in
            # "attr:: BASE64" (LDIF for values that are not plain text)
            :*) value="${value#:}"; printf '%s' "${value# }" | base64 -d 2>/dev/null && echo ;;
            *) printf '%s\n' "${value# }" ;;
        esac
    done
exit 0

#!/bin/sh
# An xgate auth hook: an `exec` plug-in that lets in only the users named on its command line.
#
#   [[actor]]
#   kind = "exec"
#   name = "hook"
#   command = "/etc/xgate/auth-hook.sh alice bob"
#   role = "auth"
#
# and `tcp-auth = ["multifile:filename=...", "hook:name=hook"]` to consult it after the password.
# xgate writes one JSON object per line on stdin; each {"type":"auth","username":...} gets one
# answer line, {"allow":true} or {"allow":false}. Other lines (events) get none.
allowed=" $* "
while IFS= read -r line; do
    case "$line" in
    *'"type":"auth"'*)
        user=$(printf '%s\n' "$line" | sed -n 's/.*"username":"\([A-Za-z0-9._-]*\)".*/\1/p')
        case "$allowed" in
        *" $user "*) if [ -n "$user" ]; then echo '{"allow":true}'; else echo '{"allow":false}'; fi ;;
        *) echo '{"allow":false}' ;;
        esac
        ;;
    esac
done

#!/bin/sh
# The real services the tests start themselves: an OpenSSH server (the SSH transport's tests run a real sshd on
# loopback), an MIT KDC and its admin tools (the Kerberos and CredSSP tests make their own realm), faketime (a
# skewed clock for the Kerberos tests), and the Kerberos headers that the gssapi package builds against.
# Installed from Debian's (or Ubuntu's) packages when missing; nothing is started here.
set -eu
need=""
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need="$need openssh-server"
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
[ -x /usr/sbin/krb5kdc ] || need="$need krb5-kdc"
[ -x /usr/sbin/kadmin.local ] || need="$need krb5-admin-server"
command -v kinit >/dev/null 2>&1 || need="$need krb5-user"
command -v faketime >/dev/null 2>&1 || need="$need faketime"
[ -e /usr/include/gssapi/gssapi.h ] || need="$need libkrb5-dev"
[ -z "$need" ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing the test services' packages:$need" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086  # one word per package
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null

#!/usr/bin/env bash
# Make a throw-away PKI for the fake API server:
#   DIR/ca.crt, DIR/ca.key          test CA
#   DIR/server.crt, DIR/server.key  server cert, SAN IP:127.0.0.1, IP:::1, DNS:localhost
#   DIR/client.crt, DIR/client.key  client cert, CN=bpfsvc, O=system:nodes (clientAuth)
# All signed with the openssl CLI; keys are EC P-256, unencrypted, mode 0600.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

days=3650
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

serial() {
	# A positive random 63-bit serial in hex.
	printf '0x%s' "$(openssl rand -hex 8 | sed 's/^./1/')"
}

# CA (own minimal config, independent of the system openssl.cnf)
newkey ca.key
cat >"$tmp/ca.cnf" <<'EOF2'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = bpfsvc-test-ca
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF2
openssl req -new -x509 -config "$tmp/ca.cnf" -key ca.key -days "$days" \
	-set_serial "$(serial)" -sha256 -out ca.crt

cat >"$tmp/csr.cnf" <<'EOF2'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
EOF2

sign() { # name subject extfile
	local name=$1 subj=$2 ext=$3
	newkey "$name.key"
	openssl req -new -config "$tmp/csr.cnf" -key "$name.key" -subj "$subj" -out "$tmp/$name.csr"
	openssl x509 -req -in "$tmp/$name.csr" -CA ca.crt -CAkey ca.key \
		-set_serial "$(serial)" -days "$days" -sha256 \
		-extfile "$ext" -out "$name.crt" 2>/dev/null
}

cat >"$tmp/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
EOF
sign server "/CN=fake-apiserver" "$tmp/server.ext"

cat >"$tmp/client.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
sign client "/O=system:nodes/CN=bpfsvc" "$tmp/client.ext"

chmod 0644 ca.crt server.crt client.crt
chmod 0600 ca.key server.key client.key
openssl verify -CAfile ca.crt server.crt client.crt >/dev/null

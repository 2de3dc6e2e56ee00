#!/usr/bin/env bash
# Regenerate the committed seed corpora (tests/fuzz/corpus/<target>/) from the unit-test
# fixtures plus a few hand-made inputs. Re-run after changing fixtures; the files are named by
# content so re-running is idempotent. Minimised crash inputs live in the same directories
# (crash-*), kept by this script.
set -eu
cd "$(dirname "$0")"
fx=../unit/fixtures
C=corpus

seed() { # seed TARGET NAME  (content on stdin)
	mkdir -p "$C/$1"
	cat >"$C/$1/$2"
}

rm -f "$C"/*/seed-*

# source: every object fixture, plus the shapes a broken `kubectl get > file` leaves behind.
mkdir -p "$C/source"
for f in "$fx"/model-*; do cp "$f" "$C/source/seed-$(basename "$f")"; done
printf '' | seed source seed-empty
printf 'null\n' | seed source seed-null
printf '{}\n' | seed source seed-empty-object
printf 'Unauthorized\n' | seed source seed-text
printf '<html><body>502 Bad Gateway</body></html>\n' | seed source seed-html
printf '{"kind":"List","items":[]}\n' | seed source seed-empty-list
printf '{"kind":"List","items":[{"kind":"List","items":[{"kind":"ServiceList","items":[{"metadata":{"name":"a"}}]}]}]}\n' \
	| seed source seed-nested-list
cat <<'Y' | seed source seed-yaml-anchors.yaml
base: &b {kind: Service, apiVersion: v1, metadata: {name: web}}
---
kind: ServiceList
items:
- *b
- <<: *b
  metadata: {name: other, namespace: x}
---
# empty document follows
---
Y
printf '{"kind":"Service","metadata":{"name":"a","name":"b"}}\n' | seed source seed-dup-key.json
printf 'kind: Service\nmetadata:\n  name: a\n  name: b\n' | seed source seed-dup-key.yaml
printf '{"kind":"Service","metadata":{"name":"web\\u0000evil"}}\n' | seed source seed-nul-name.json
printf '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}\n' \
	| seed source seed-status.json
printf '{"kind":"List","items":[{"kind":"Service","metadata":{"name":"a"}},{"metadata":{}},{"kind":"Status"}]}\n' \
	| seed source seed-list-odd-items.json
printf '{"kind":"PodList","items":[{"metadata":{"name":"p"}}]}\n' | seed source seed-podlist.json
{ for i in $(seq 12); do printf '{"kind":"List","items":['; done; printf '{"kind":"Service"}'
  for i in $(seq 12); do printf ']}'; done; echo; } | seed source seed-deep-lists.json
cat <<'Y' | seed source seed-yaml-tags.yaml
kind: !!str Service
apiVersion: v1
metadata: {name: !!str 80, namespace: ~, labels: {a: !!null "", b: !!bool true}}
spec:
  clusterIP: 10.96.0.1
  ports: [{port: !!int "0x50"}, {port: 0o17, name: !!str 1e3}, {port: !!float 1.5}]
  x: [.inf, -.Inf, .nan, 1e400, 99999999999999999999, 0x, 0o8, +12, -0]
Y
cat <<'Y' | seed source seed-yaml-alias-bomb.yaml
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
kind: Service
Y
cat <<'Y' | seed source seed-yaml-odd-keys.yaml
? &k [1, 2]
: x
*k : y
80: a
~: b
Y

# model: the object fixtures (the model target parses like the source does).
mkdir -p "$C/model"
for f in "$fx"/model-*; do cp "$f" "$C/model/seed-$(basename "$f")"; done

# kubeconfig: the fixtures, once per context of the basic one ("#context NAME" first line),
# and the merge fixture as three files separated by "#file" lines.
mkdir -p "$C/kubeconfig"
cp "$fx/kubeconfig-basic/config" "$C/kubeconfig/seed-basic"
sed -n 's/^- {name: \([^,]*\),.*/\1/p; s/^- name: \(dev\)$/\1/p' "$fx/kubeconfig-basic/config" |
	while read -r ctx; do
		{ printf '#context %s\n' "$ctx"; cat "$fx/kubeconfig-basic/config"; } |
			seed kubeconfig "seed-basic-$ctx"
	done
{ cat "$fx/kubeconfig-merge/a.yaml"; echo '#file'; cat "$fx/kubeconfig-merge/sub/b.yaml"
  echo '#file'; cat "$fx/kubeconfig-merge/c.yaml"; } | seed kubeconfig seed-merge
{ echo '#context mixed'; cat "$fx/kubeconfig-merge/a.yaml"; echo '#file'
  cat "$fx/kubeconfig-merge/sub/b.yaml"; } | seed kubeconfig seed-merge-mixed

# exec_cred: ExecCredentials as plugins print them, good and bad.
V1=client.authentication.k8s.io/v1
V1B=client.authentication.k8s.io/v1beta1
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"tok-1"}}\n' $V1 | seed exec_cred seed-token
printf '{"apiVersion":"%s","kind":"ExecCredential","spec":{},"status":{"token":"tok-2","expirationTimestamp":"2026-01-02T03:04:05Z"}}\n' $V1B \
	| seed exec_cred seed-v1beta1-expiry
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"CERT-PEM","clientKeyData":"KEY-PEM","expirationTimestamp":"2026-01-02T05:04:05.5+02:00"}}\n' $V1 \
	| seed exec_cred seed-cert-key
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"C"}}\n' $V1 | seed exec_cred seed-cert-only
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"x","expirationTimestamp":"2026-13-45T99:99:99-25:00"}}\n' $V1 \
	| seed exec_cred seed-bad-time
printf '{"apiVersion":"%s","kind":"Secret","status":{"token":42}}\n' $V1 | seed exec_cred seed-wrong-kind
printf 'eyJhbGciOiJSUzI1NiJ9.not-json\n' | seed exec_cred seed-not-json
printf '{"apiVersion":"%s","kind":"ExecCredential","kind":"ExecCredential","status":{"token":"a\\u0000b"}}\n' $V1 \
	| seed exec_cred seed-dup-key-nul
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"\xff\xfe","n":1e999999}}\n' $V1 \
	| seed exec_cred seed-bad-utf8
printf '{"apiVersion":"%s","kind":"ExecCredential","status":"token"} trailing\n' $V1 | seed exec_cred seed-status-string

# watch: byte 0 picks the line limit (0: WATCH_LINE_MAX, 1: 16, 2: 256, 3: 4096), byte 1
# seeds the read sizes, then the stream.
ev() { printf '{"type":"%s","object":%s}\n' "$1" "$2"; }
svc='{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"default","resourceVersion":"7"},"spec":{"clusterIP":"10.96.0.10","ports":[{"port":80}]}}'
{ printf '\0\x01'; ev ADDED "$svc"; ev MODIFIED "$svc"; printf '\n\n'; ev DELETED "$svc"
  ev BOOKMARK '{"kind":"Service","metadata":{"resourceVersion":"12"}}'
  ev ERROR '{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410}'
  printf '{"type":"ADDED","obj'; } | seed watch seed-events
{ printf '\x02\x07'; ev ADDED "$svc"; ev ADDED '{"kind":"EndpointSlice","metadata":{"name":"web-1"},"endpoints":[]}'; } | seed watch seed-limit-256
{ printf '\x01\x00'; printf 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; } | seed watch seed-overlong
{ printf '\0\xff'; printf '{"type":"ADDED","type":"DELETED","object":{}}\n{"type":"ADDED\\u0000x","object":{}}\n{"type":"FOO","object":{}}\n{"type":"ADDED","object":[]}\nnot json\n'; } \
	| seed watch seed-bad-events

#!/usr/bin/env bash
# Ways to reach and authenticate to the API server: kubeconfig token, tokenFile, client
# certificate (files and inline data), exec credential plugins (v1, v1beta1), in-cluster
# service account; TLS verification.
. "$(dirname "$0")/lib.sh"

topo_up 1 || { not_ok "topology"; finish; exit 1; }
api_up || { not_ok "fake API server"; finish; exit 1; }
api_apply "$(svc default web 10.96.0.10 'http:80:8080:TCP')"
api_apply "$(slice default web web-1 IPv4 'http:8080:TCP' '10.244.0.11')"

# variant DESC AUTH: start the agent on $KUBECONFIG_FILE, require a sync, requests made with
# AUTH (token|cert) only, and service traffic; then stop it.
variant() {
	local desc=$1 auth=$2 mark lines
	mark=$(api_last_id)
	if ! api_agent_start "${@:3}"; then
		not_ok "$desc: agent synced" "$(tail -n 3 "$AGENT_LOG")"
		agent_stop
		return
	fi
	lines=$(reqlog "$mark")
	check "$desc: synced, every request authenticated by $auth" \
		test "$(grep -c " auth=$auth " <<<"$lines")" -eq "$(wc -l <<<"$lines")" -a -n "$lines"
	check "$desc: service traffic works" reaches 10.96.0.10 80 '^pod1:8080$'
	agent_stop
}

kubeconfig_write "    token: $(cat "$TOKEN_FILE")"
variant "static token" token
kubeconfig_write "    tokenFile: token"
variant "tokenFile" token

# Client certificates: token auth off on the server, so only the certificate can work.
ctl POST /control/auth '{"token":false,"cert":true}' >/dev/null
kubeconfig_write "    client-certificate: pki/client.crt
    client-key: pki/client.key"
variant "client certificate files" cert
kubeconfig_write "    client-certificate-data: $(base64 -w0 "$PKI/client.crt")
    client-key-data: $(base64 -w0 "$PKI/client.key")"
variant "client certificate inline data (kept in memory)" cert
ctl POST /control/auth '{"token":true,"cert":false}' >/dev/null

# Exec credential plugins: argv as an array, env from the kubeconfig, cached until expiry.
cat >"$TMP/plugin.sh" <<'PLUGIN'
#!/bin/sh
# usage: plugin.sh API_VERSION MODE   (MODE: token | cert)
echo run >>"$PLUGIN_DIR/runs"
printf '%s\n' "$KUBERNETES_EXEC_INFO" >"$PLUGIN_DIR/info"
exp=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
if [ "$2" = token ]; then
	printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}\n' \
		"$1" "$(cat "$PLUGIN_DIR/token")" "$exp"
else
	cert=$(awk '{printf "%s\\n", $0}' "$PLUGIN_DIR/pki/client.crt")
	key=$(awk '{printf "%s\\n", $0}' "$PLUGIN_DIR/pki/client.key")
	printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"}}\n' \
		"$1" "$cert" "$key"
fi
PLUGIN
chmod +x "$TMP/plugin.sh"
kubeconfig_write "    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin.sh
      args: [client.authentication.k8s.io/v1, token]
      env: [{name: PLUGIN_DIR, value: $TMP}]
      interactiveMode: Never
      provideClusterInfo: true"
variant "exec plugin v1 (token)" token
check "exec plugin ran once (credential cached)" test "$(wc -l <"$TMP/runs")" -eq 1
check "exec plugin got KUBERNETES_EXEC_INFO with the cluster" \
	grep -q "\"interactive\":false.*\"server\":\"https://127.0.0.1:$API_PORT\"" "$TMP/info"
ctl POST /control/auth '{"token":false,"cert":true}' >/dev/null
kubeconfig_write "    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: $TMP/plugin.sh
      args: [client.authentication.k8s.io/v1beta1, cert]
      env: [{name: PLUGIN_DIR, value: $TMP}]"
variant "exec plugin v1beta1 (client certificate)" cert
ctl POST /control/auth '{"token":true,"cert":true}' >/dev/null

# In-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account directory.
mkdir -p "$TMP/sa"
cp "$TOKEN_FILE" "$TMP/sa/token"
cp "$PKI/ca.crt" "$TMP/sa/ca.crt"
mark=$(api_last_id)
before=$(syncs)
env -u KUBECONFIG KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$API_PORT" \
	BPFSVC_SERVICEACCOUNT_DIR="$TMP/sa" \
	"$BPFSVC" agent --cgroup "$CG" --pin-path "$PIN" --node-name node1 2>>"$AGENT_LOG" &
AGENT_PID=$!
check "in-cluster config: synced" wait_for "in-cluster sync" 100 synced_past "$before"
check "in-cluster config: logged as such" grep -q 'config="in-cluster"' "$AGENT_LOG"
check "in-cluster config: token auth" test "$(reqlog "$mark" | grep -vc ' auth=token ')" -eq 0
agent_stop

# In-cluster on a node without kube-proxy: KUBERNETES_SERVICE_HOST is the kubernetes
# Service VIP, unreachable until programmed; --api-server names the real endpoint.
mark=$(api_last_id)
before=$(syncs)
env -u KUBECONFIG KUBERNETES_SERVICE_HOST=10.96.0.1 KUBERNETES_SERVICE_PORT=443 \
	BPFSVC_SERVICEACCOUNT_DIR="$TMP/sa" \
	"$BPFSVC" agent --api-server "https://127.0.0.1:$API_PORT/" --cgroup "$CG" --pin-path "$PIN" \
	--node-name node1 2>>"$AGENT_LOG" &
AGENT_PID=$!
check "in-cluster with --api-server: synced" wait_for "in-cluster sync" 100 synced_past "$before"
check "in-cluster with --api-server: the service account token was used" \
	test "$(reqlog "$mark" | grep -c ' auth=token ')" -ge 2
agent_stop

# TLS is verified: a CA that did not sign the server's certificate fails, and says so.
bash "$TOP/tests/apiserver/mkcerts.sh" "$TMP/otherpki" >/dev/null 2>&1
kubeconfig_write "    tokenFile: token"
sed -i "s|certificate-authority: pki/ca.crt|certificate-authority: otherpki/ca.crt|" "$KUBECONFIG_FILE"
before=$(syncs)
"$BPFSVC" agent --kubeconfig "$KUBECONFIG_FILE" --cgroup "$CG" --pin-path "$PIN" 2>>"$AGENT_LOG" &
AGENT_PID=$!
wait_for "a TLS failure" 50 grep -q 'op=list error=".*[Cc]ertificate' "$AGENT_LOG"
check "wrong CA: the TLS failure is logged" grep -q 'op=list error=".*[Cc]ertificate' "$AGENT_LOG"
check "wrong CA: nothing synced" test "$(syncs)" -eq "$before"
check "  the pinned state keeps serving" reaches 10.96.0.10 80 '^pod1:8080$'
agent_stop
sed -i "s|    certificate-authority: otherpki/ca.crt|    insecure-skip-tls-verify: true|" "$KUBECONFIG_FILE"
variant "insecure-skip-tls-verify" token
check "insecure-skip-tls-verify is warned about" grep -q 'level=warn msg="TLS verification of the API server is off' "$AGENT_LOG"
finish

#!/usr/bin/env bash
# Try `siprot verify` and `rotate --verify` by hand, without any provider account: starts
# the fake providers and a local Kamailio (the SIP registrar of the tests, configured from
# tests/support/kamailio.cfg) whose user table the fakes keep in step with their SIP
# passwords, in a private D-Bus session with a throw-away gnome-keyring; prints the
# commands to try and opens a shell where they work. Leaving the shell stops everything.
#
#   scripts/demo-verify.sh           # interactive
#   scripts/demo-verify.sh --check   # non-interactive: rotate --verify twice, verify, exit
#
# SIPROT_DEMO_BIN_DIR: where siprot and examples/fake-providers are (default target/debug,
# built here).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=interactive
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: scripts/demo-verify.sh [--check]" >&2; exit 2 ;;
esac

. scripts/lib/demo.sh
demo_enter_keyring "$0" "$@"

bin_dir="$(demo_bin_dir)"
kamailio=/usr/sbin/kamailio
[ -x "$kamailio" ] || kamailio=$(command -v kamailio)
kamcmd=/usr/sbin/kamcmd
[ -x "$kamcmd" ] || kamcmd=$(command -v kamcmd)

demo_work siprot-demo-verify
work=$demo_work
trap demo_cleanup EXIT

# The fake providers, writing Kamailio's user table (db_text) as their passwords change.
mkdir -p "$work/db"
printf 'table_name(string) table_version(int)\nsubscriber:7\n' >"$work/db/version"
demo_start_fakes --sip-users "$work/db/subscriber"

# Kamailio on a free loopback port (UDP and TCP); a taken port makes it exit: try another.
ctl="$work/kamailio.ctl"
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    sed -e "s|@PORT@|$port|g" -e "s|@DB@|$work/db|g" -e "s|@CTL@|$ctl|g" \
        -e "s|@ALGORITHM@|MD5|g" tests/support/kamailio.cfg >"$work/kamailio.cfg"
    "$kamailio" -DD -E -m 32 -M 4 -f "$work/kamailio.cfg" </dev/null >"$work/kamailio.log" 2>&1 &
    kamailio_pid=$!
    demo_pids+=("$kamailio_pid")
    for _ in $(seq 100); do
        [ -S "$ctl" ] && break
        kill -0 "$kamailio_pid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 0.3
    if kill -0 "$kamailio_pid" 2>/dev/null && [ -S "$ctl" ]; then
        break
    fi
    wait "$kamailio_pid" 2>/dev/null || true
    unset 'demo_pids[-1]'
    kamailio_pid=""
    rm -f "$ctl"
done
[ -n "$kamailio_pid" ] || {
    echo "demo-verify: kamailio did not start:" >&2
    cat "$work/kamailio.log" >&2
    exit 1
}

demo_export_fakes
export SIPROT_KEYRING_SERVICE="siprot-demo-verify-$$"
export XDG_STATE_HOME="$work/state"
export PATH="$bin_dir:$PATH"
registrar="sip:127.0.0.1:$port"
export SIPROT_DEMO_REGISTRAR="$registrar"
telepath=conn_abc123xyz
exotel=6f1c2d3e-aaaa-bbbb-cccc-0123456789ab
vobiz=aabbccdd-1234-5678-90ab-cdef12345678
# The three demo credentials as a fleet, every entry verified at the local Kamailio.
inventory="$work/demo.toml"
cat >"$inventory" <<TOML
registrar = "$registrar"

[[credential]]
provider = "telepath"
id = "$telepath"

[[credential]]
provider = "exotel"
id = "$exotel"
device = "dev_01"
sip_username = "$exotel-dev_01"  # Exotel returns none; the fakes register UUID-DEVICE

[[credential]]
provider = "vobiz"
id = "$vobiz"
TOML

echo "==> fake providers: $(head -n 1 "$work/fake.out")"
echo "==> Kamailio: $registrar (UDP and TCP), its user table kept in step by the fakes"
echo "==> files (removed at the end): $work"

if [ "$mode" = check ]; then
    set -x
    siprot rotate --provider telepath "$telepath" --verify "$registrar"
    siprot rotate --provider telepath "$telepath" --verify "$registrar;transport=tcp" \
        --expect-rejected-previous --json
    siprot verify --registrar "$registrar" --provider telepath "$telepath" \
        --expect-rejected-previous
    siprot rotate --provider vobiz "$vobiz" --verify "$registrar"
    siprot rotate --inventory "$inventory" --verify --expect-rejected-previous
    siprot status --inventory "$inventory"
    set +x
    echo "demo-verify: ok"
    exit 0
fi

cat <<TEXT

Try, in the shell that opens now (exit or Ctrl-D stops everything; the registrar is also
in \$SIPROT_DEMO_REGISTRAR there):

  # rotate, then prove the new password with a SIP REGISTER (SIP user from the answer)
  siprot rotate --provider telepath $telepath --verify $registrar
  # again, and check that the registrar now refuses the previous password
  siprot rotate --provider telepath $telepath --verify '$registrar;transport=tcp' --expect-rejected-previous
  # verify the stored password alone, any time
  siprot verify --registrar $registrar --provider telepath $telepath --expect-rejected-previous
  siprot rotate --provider vobiz $vobiz --verify $registrar --json
  # Exotel returns no SIP username: the fakes register its devices as UUID-DEVICE
  siprot rotate --provider exotel $exotel --device dev_01 \\
      --verify $registrar --username $exotel-dev_01
  # a hook that runs after the password is stored and before verification
  siprot rotate --provider telepath $telepath --exec 'wc -c' --verify $registrar
  # the three as a fleet (registrar and usernames in the inventory), then what was verified when
  siprot rotate --inventory $inventory --verify
  siprot status --inventory $inventory
  # Kamailio's registrations (siprot's REGISTER never adds one)
  $kamcmd -s unix:$ctl ul.dump

TEXT
rc="$work/bashrc"
{
    [ -f "$HOME/.bashrc" ] && echo ". '$HOME/.bashrc'"
    echo "export PATH='$bin_dir':\"\$PATH\""
    echo "PS1='(siprot demo-verify) \\w\\$ '"
} >"$rc"
status=0
bash --rcfile "$rc" -i || status=$?
echo "==> stopping Kamailio and the fake providers"
exit "$status"

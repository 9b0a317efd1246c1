# The example fleet of the bento repository (its rendered output is the
# repository's top-level generated/). See `bento init` for a commented sample.
CHROOT_DIR=/home/chroot
REMOTE_IP=bento.example.org
REMOTE_PORT=22
TIMEOUT=20
REBUILD_ARGS="--fallback"
UPDATE_RANDOM_DELAY=2min

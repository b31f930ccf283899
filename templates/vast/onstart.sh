#!/bin/sh
# jarvis deploy vast: Vast.ai runs this script each time the instance starts.
#
# The gpu-server is installed over SSH by `jarvis deploy vast` right after the instance
# comes up: the sources over SFTP, a venv + pip, and the API key / Hugging Face token in a
# 0600 file written over SFTP. Secrets are never put in this script, in --env or in any
# other argument of `vastai create instance`: those travel through the Vast API and show
# up in `vastai show instance`.
#
# On the first start nothing is installed yet and this does nothing. After a restart of the
# instance (`vastai stop/start instance`), it starts the installed server again, detached,
# exactly as the deploy did (pid in server.pid, output in server.log).
DIR={{remoteDirExpr}}
if [ -x "$DIR/start-detached.sh" ]; then
  "$DIR/start-detached.sh" >/dev/null
fi

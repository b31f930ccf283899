#!/bin/bash
# EC2 user-data for the jarvis gpu-server, rendered by `jarvis deploy aws`.
#
# This file holds no secret. User-data can be read by anything on the instance (instance
# metadata) and by IAM users allowed ec2:DescribeInstanceAttribute, so the server's API key
# and HF token live in AWS Secrets Manager; the instance reads them at boot with its own
# role, which may read that one secret and nothing else.
#
# Expects the AWS Deep Learning Base OSS Nvidia Driver GPU AMI (NVIDIA driver, Docker and
# the NVIDIA Container Toolkit preinstalled):
#   https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html
# The placeholders in double braces below are filled in by jarvis, shell-quoted.
set -euo pipefail

REGION={{region}}
SECRET_ID={{secretId}}
IMAGE={{image}}
ENGINE={{engine}}
MODEL={{model}}
PORT={{port}}
DATA_DIR=/opt/jarvis

log() { echo "jarvis-user-data: $*"; }

# 1. Docker with the NVIDIA runtime.
systemctl start docker
if ! docker info --format '{{json .Runtimes}}' | grep -q nvidia; then
  if command -v nvidia-ctk >/dev/null; then
    log "registering the NVIDIA runtime with Docker"
    nvidia-ctk runtime configure --runtime=docker
    systemctl restart docker
  else
    log "no NVIDIA Container Toolkit on this AMI: use the Deep Learning Base OSS Nvidia Driver GPU AMI"
    exit 1
  fi
fi

# 2. Secrets, read with the instance role into a root-only env file (never argv).
install -d -m 700 /etc/jarvis
umask 077
fetch_secret() {
  if command -v aws >/dev/null; then
    aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_ID" --query SecretString --output text
  else
    python3 -c 'import sys, boto3; print(boto3.client("secretsmanager", region_name=sys.argv[1]).get_secret_value(SecretId=sys.argv[2])["SecretString"])' "$REGION" "$SECRET_ID"
  fi
}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  # The role's credentials can take a few seconds to reach a new instance.
  if fetch_secret >/etc/jarvis/secret.json; then break; fi
  log "secret not readable yet (attempt $attempt)"
  sleep 6
done
python3 - /etc/jarvis/secret.json >/etc/jarvis/server.env <<'PY'
import json, sys
for key, value in json.load(open(sys.argv[1])).items():
    if value:
        print(f"{key}={value}")
PY
rm -f /etc/jarvis/secret.json
chmod 600 /etc/jarvis/server.env

# 3. The image: ECR needs a login with the instance role; other registries are public.
if [[ "$IMAGE" == *.dkr.ecr.*.amazonaws.com/* ]]; then
  registry="${IMAGE%%/*}"
  aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$registry"
fi
docker pull "$IMAGE"

# 4. The server: restarted by Docker after a crash or a reboot; model cache and jobs on disk.
install -d -m 755 "$DATA_DIR"
docker rm -f jarvis-gpu-server >/dev/null 2>&1 || true
docker run -d --name jarvis-gpu-server --restart unless-stopped --gpus all \
  -p "$PORT:8000" \
  --env-file /etc/jarvis/server.env \
  -e JARVIS_GPU_HOST=0.0.0.0 -e JARVIS_GPU_PORT=8000 \
  -e JARVIS_GPU_ENGINE="$ENGINE" -e JARVIS_GPU_MODEL="$MODEL" \
  -e JARVIS_GPU_DATA_DIR=/data/jobs -e HF_HOME=/data/huggingface \
  -v "$DATA_DIR:/data" \
  "$IMAGE"
log "gpu-server started; it answers /health on port $PORT once the model is loaded"

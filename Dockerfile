# syntax=docker/dockerfile:1
# tubecache: docker build -t tubecache . && docker run -p 8080:8080 tubecache
# Other commands: docker run --rm tubecache prune --ttl 7d --json | ls | stat <id> | doctor
# Node 24 LTS; tubecache supports Node 22.12 and newer (--build-arg NODE_IMAGE=node:22-bookworm-slim).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript to dist/ ---------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the npm ci layer is reused until dependencies change.
# --ignore-scripts: prepare (the build) needs src/, copied below; and the `node`
# devDependency (a second Node for npm scripts on older machines) is not needed
# where the image's Node is already 24.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The compiler directly, with the image's Node: `npm run build` would look for
# the devDependency's Node that --ignore-scripts left uninstalled.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# ---- runtime ----------------------------------------------------------------
FROM ${NODE_IMAGE}
# yt-dlp from PyPI, not Debian: Debian's yt-dlp lags behind YouTube's changes
# and old versions stop working. Pinned so that a rebuild is reproducible; bump
# YTDLP_VERSION (README: "Updating yt-dlp") or override it per build:
#   docker build --build-arg YTDLP_VERSION=<release> .
# The [default] extra brings what current YouTube extraction needs: yt-dlp-ejs
# (the scripts that solve YouTube's JavaScript challenges), certifi, brotli and
# websockets. In its own venv, so Debian's Python stays as Debian ships it (PEP 668).
# No ffmpeg: tubecache only asks yt-dlp for JSON (-J) about one single-file
# format per request (FORMATS), and yt-dlp runs ffmpeg only to merge or convert
# downloads, which tubecache never asks it to make.
# tini: PID 1 that reaps zombies — on RESOLVE_TIMEOUT tubecache kills yt-dlp's
# process group, whose orphaned children would otherwise stay as zombies under node.
ARG YTDLP_VERSION=2026.08.19
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/yt-dlp \
 && /opt/yt-dlp/bin/pip install --no-cache-dir --disable-pip-version-check "yt-dlp[default]==${YTDLP_VERSION}" \
 && ln -s /opt/yt-dlp/bin/yt-dlp /usr/local/bin/yt-dlp \
 && yt-dlp --version
# yt-dlp needs a JavaScript runtime for YouTube and only enables Deno by default;
# this image already has Node. The system-wide config file applies to every
# yt-dlp run; YTDLP_EXTRA_ARGS stays free for the operator.
RUN printf -- '--js-runtimes node\n' > /etc/yt-dlp.conf

WORKDIR /app
ENV HOST=0.0.0.0 NODE_ENV=production
# --ignore-scripts: prepare would compile again, without the compiler; dist/ comes from the build stage.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The `tubecache` command (bin/tubecache.js runs dist/cli.js), on PATH so that
# `docker exec <container> tubecache stat <id>` works too.
COPY bin ./bin
RUN ln -s /app/bin/tubecache.js /usr/local/bin/tubecache
# DATA_DIR (./data) holds the disk store's objects when S3_ENDPOINT is empty;
# mount a volume there to keep them. The app runs as the unprivileged
# `node` user of the base image, which must own it.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

EXPOSE 8080
# Node's fetch instead of curl (not installed); PORT may be overridden at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# `tubecache serve`; any other subcommand replaces CMD.
ENTRYPOINT ["/usr/bin/tini", "--", "tubecache"]
CMD ["serve"]

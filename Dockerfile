# syntax=docker/dockerfile:1
# tubecache: docker build -t tubecache . && docker run -p 8080:8080 tubecache
# Other commands: docker run --rm tubecache prune --ttl 7d --json | ls | stat <id> | doctor
# Node 24 LTS instead of 22: --build-arg NODE_IMAGE=node:24-bookworm-slim
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- build: compile TypeScript to dist/ ---------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the npm ci layer is reused until dependencies change.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime ----------------------------------------------------------------
FROM ${NODE_IMAGE}
# yt-dlp from PyPI, not Debian: bookworm's yt-dlp (2023.03) can no longer read
# YouTube, and yt-dlp must track YouTube's changes. pip (over the zipapp) because
# the [default] extra brings what current YouTube extraction needs in one step:
# yt-dlp-ejs (the scripts that solve YouTube's JavaScript challenges), certifi,
# brotli and websockets. --break-system-packages: Debian marks its Python as
# externally managed (PEP 668); nothing else in this image uses pip.
# Rebuild the image to pick up a new yt-dlp release, or pin one with
# --build-arg YTDLP_SPEC='yt-dlp[default]==<version>'.
# ffmpeg: yt-dlp uses it to probe and merge formats. tini: PID 1 that reaps
# zombies — on RESOLVE_TIMEOUT tubecache kills yt-dlp's process group, whose
# orphaned children would otherwise stay as zombies under node.
ARG YTDLP_SPEC="yt-dlp[default]"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip ffmpeg ca-certificates tini \
 && pip install --no-cache-dir --break-system-packages --root-user-action=ignore "$YTDLP_SPEC" \
 && rm -rf /var/lib/apt/lists/* \
 && yt-dlp --version
# yt-dlp needs a JavaScript runtime for YouTube and only enables Deno by default;
# this image already has Node (>= 20 is supported). The system-wide config file
# applies to every yt-dlp run; YTDLP_EXTRA_ARGS stays free for the operator.
RUN printf -- '--js-runtimes node\n' > /etc/yt-dlp.conf

WORKDIR /app
ENV HOST=0.0.0.0 NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# The `tubecache` command (bin/tubecache.js runs dist/ when there is no src/),
# on PATH so that `docker exec <container> tubecache stat <id>` works too.
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

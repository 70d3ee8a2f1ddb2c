# zt-pdp image. Build: docker build -t zt-pdp:0.1.0 .
# Both stages use the same exact Node 20 release so that the compiled output and the runtime agree.

# --- build: compile TypeScript with the dev dependencies; only dist/ leaves this stage.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script would run tsc before the sources are copied in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, the compiled code and the example policies.
FROM node:20.20.2-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    PDP_POLICY_DIR=/app/policies \
    PDP_DECISION_LOG=stdout
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" needs tsc, a dev dependency; dist/ comes from the build stage instead.
# No runtime dependency has an install script (geoip-lite ships its database inside the package).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && rm -rf /root/.npm
COPY --from=build /app/dist ./dist
# The bundled example policies; mount a directory over PDP_POLICY_DIR to replace them.
COPY policies ./policies
# Everything above stays owned by root and read-only to the process. A numeric user lets Kubernetes
# verify runAsNonRoot (uid 1000 is the image's "node" user). At run time nothing is written to disk:
# logs and the decision log go to stdout, so the root filesystem can be mounted read-only.
USER 1000:1000
EXPOSE 8080
# Plain node, no curl or wget in the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('node:http').get('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz', (res) => process.exit(res.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
# node directly rather than npm start: npm would rebuild (prestart) and write to its cache.
CMD ["node", "dist/src/server.js"]

# The in-cluster refresher's image: kubectl-ecr on Node 20, non-root (numeric UID 65532, which the
# CronJob's runAsNonRoot can verify), no shell, no package manager.
# Published as ghcr.io/kubectl-ecr/kubectl-ecr:<version>, the npm package's exact version, by the
# release workflow; install-cron defaults to the tag of the CLI that installs it.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json oclif.manifest.json ./
COPY bin ./bin
USER 65532:65532
ENV NODE_ENV=production
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/run.js"]

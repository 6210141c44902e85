// The zstd wasm module of the zstddec package, base64 (build.mjs provides it).
declare module "virtual:zstd-wasm" {
  const base64: string;
  export default base64;
}

// k8s_validate.mjs — validate Kubernetes manifests offline against the Kubernetes API's
// OpenAPI schemas as compiled by the npm package kubernetes-models (types, required
// fields, enums, formats), and reject field names the API does not have (the package's
// type declarations list every field of every object). KServe's objects have no schema
// there: their pod-spec parts (ServingRuntime containers, the predictor's container
// fields) are checked as core/v1 Containers, the rest by hand against KServe's v1beta1 API.
//
//   node k8s_validate.mjs MODELS_DIR < docs.json
// docs.json: [{"file": "...", "doc": {...}}, ...] (scripts/validate-k8s makes it from YAML).
// Prints one line per object; exit status 1 when any object is invalid.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(process.argv[2], "node_modules");
const km = path.join(root, "kubernetes-models");
const docs = JSON.parse(fs.readFileSync(0, "utf8"));

// Field lists: every `export interface IX { "field"?: Type; }` of the package's .d.ts files,
// under its long name (export type { IX as IIoK8s... }).
const fields = new Map();
function scanDecls(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) { if (e.name !== "_schemas") scanDecls(p); continue; }
        if (!e.name.endsWith(".d.ts")) continue;
        const text = fs.readFileSync(p, "utf8");
        const alias = /export type \{ (I\w+) as (I\w+)/.exec(text);
        const body = /export interface (I\w+)(?: extends \w+)? \{\n([\s\S]*?)\n\}/.exec(text);
        if (!alias || !body || alias[1] !== body[1]) continue;
        const f = {};
        for (const m of body[2].matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) f[m[1]] = m[2];
        fields.set(alias[2], f);
    }
}
scanDecls(km);
scanDecls(path.join(root, "@kubernetes-models", "apimachinery"));

// strict(value, type, where): field names not in the API, recursively.
function strict(v, type, where, errs) {
    const arr = /^Array<(I\w+)>$/.exec(type);
    if (arr) { if (Array.isArray(v)) v.forEach((x, i) => strict(x, arr[1], `${where}[${i}]`, errs)); return; }
    const f = fields.get(type);
    if (!f || v === null || typeof v !== "object" || Array.isArray(v)) return;
    for (const [k, x] of Object.entries(v)) {
        if (!(k in f)) errs.push(`${where}.${k}: no such field in ${type.replace(/^IIoK8s/, "")}`);
        else strict(x, f[k], `${where}.${k}`, errs);
    }
}

async function schema(name) { // name: IoK8sApiCoreV1Container etc.
    const dir = name.startsWith("IoK8sApimachinery") ? path.join(root, "@kubernetes-models/apimachinery") : km;
    return (await import(pathToFileURL(path.join(dir, "_schemas", name + ".js")))).validate;
}
async function check(v, name, where, errs) {
    const validate = await schema(name);
    if (!validate(v)) for (const e of validate.errors)
        errs.push(`${where}${e.instancePath}: ${e.message || e.keyword} ${JSON.stringify(e.params)}`);
    strict(v, "I" + name, where, errs);
}

// apiVersion + kind -> the package's schema name (IoK8sApi<Group><Version><Kind>).
function coreName(apiVersion, kind) {
    const [g, ver] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
    const group = g.replace(/\.k8s\.io$/, "").split(".").map(s => s[0].toUpperCase() + s.slice(1)).join("");
    return `IoK8sApi${group}${ver[0].toUpperCase()}${ver.slice(1)}${kind}`;
}

async function kserve(doc, errs) {
    await check(doc.metadata ?? {}, "IoK8sApimachineryPkgApisMetaV1ObjectMeta", "metadata", errs);
    const spec = doc.spec ?? {};
    const known = (o, names, where) => {
        for (const k of Object.keys(o ?? {})) if (!names.includes(k)) errs.push(`${where}.${k}: not a KServe field`);
    };
    if (doc.kind === "ServingRuntime" || doc.kind === "ClusterServingRuntime") {
        known(spec, ["supportedModelFormats", "protocolVersions", "containers", "multiModel", "disabled",
            "grpcEndpoint", "grpcDataEndpoint", "httpDataEndpoint", "replicas", "storageHelper",
            "builtInAdapter", "volumes", "nodeSelector", "affinity", "tolerations", "labels",
            "annotations", "imagePullSecrets", "workerSpec", "hostIPC"], "spec");
        if (!Array.isArray(spec.containers) || !spec.containers.length) errs.push("spec.containers: required");
        for (const [i, c] of (spec.containers ?? []).entries())
            await check(c, "IoK8sApiCoreV1Container", `spec.containers[${i}]`, errs);
        for (const [i, f] of (spec.supportedModelFormats ?? []).entries()) {
            known(f, ["name", "version", "autoSelect", "priority"], `spec.supportedModelFormats[${i}]`);
            if (typeof f.name !== "string") errs.push(`spec.supportedModelFormats[${i}].name: required string`);
        }
        for (const p of spec.protocolVersions ?? [])
            if (!["v1", "v2", "grpc-v1", "grpc-v2"].includes(p)) errs.push(`spec.protocolVersions: ${p} unknown`);
    } else if (doc.kind === "InferenceService") {
        known(spec, ["predictor", "transformer", "explainer"], "spec");
        const p = spec.predictor;
        if (!p) { errs.push("spec.predictor: required"); return; }
        const model = p.model;
        if (!model) { errs.push("spec.predictor.model: required here"); return; }
        // ComponentExtensionSpec, then PodSpec fields, are allowed on the predictor.
        const ext = ["minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency",
            "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
            "deploymentStrategy", "model"];
        const pod = Object.keys(fields.get("IIoK8sApiCoreV1PodSpec"));
        known(p, [...ext, ...pod], "spec.predictor");
        for (const k of ["minReplicas", "maxReplicas"])
            if (k in p && !Number.isInteger(p[k])) errs.push(`spec.predictor.${k}: integer`);
        const podPart = Object.fromEntries(Object.entries(p).filter(([k]) => pod.includes(k)));
        await check({ containers: [], ...podPart }, "IoK8sApiCoreV1PodSpec", "spec.predictor", errs);
        const { modelFormat, protocolVersion, runtime, storageUri, ...container } = model;
        if (!modelFormat || typeof modelFormat.name !== "string") errs.push("spec.predictor.model.modelFormat.name: required");
        if (protocolVersion && !["v1", "v2", "grpc-v2"].includes(protocolVersion)) errs.push(`protocolVersion ${protocolVersion} unknown`);
        if (storageUri !== undefined && typeof storageUri !== "string") errs.push("storageUri: string");
        await check({ name: "kserve-container", ...container }, "IoK8sApiCoreV1Container", "spec.predictor.model", errs);
    } else errs.push(`kind ${doc.kind}: unknown KServe kind`);
}

let bad = 0, n = 0;
for (const { file, doc } of docs) {
    if (!doc || typeof doc !== "object") continue;
    const what = `${file}: ${doc.kind}/${doc.metadata?.name ?? "?"}`;
    const errs = [];
    if (doc.kind === "Kustomization" || doc.kind === "Component") continue; // kustomize's, not the API's
    if (/^serving\.kserve\.io\//.test(doc.apiVersion)) await kserve(doc, errs);
    else {
        const name = coreName(doc.apiVersion ?? "", doc.kind ?? "");
        if (!fs.existsSync(path.join(km, "_schemas", name + ".js"))) errs.push(`no API schema for ${doc.apiVersion} ${doc.kind}`);
        else await check(doc, name, doc.kind, errs);
    }
    n++;
    if (errs.length) { bad++; console.log(`FAIL ${what}`); for (const e of errs) console.log(`     ${e}`); }
    else console.log(`ok   ${what}`);
}
console.log(`k8s-validate: ${n - bad} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);

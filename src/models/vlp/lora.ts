/**
 * LoRA over a whole model: enable adapters on the Linear layers a predicate selects, list them,
 * and merge them all back into the base weights before an export that should not carry them.
 * The per-layer mechanics (lora_A / lora_B, scale alpha / rank, ONNX emission) live in
 * src/models/nn/linear.ts.
 */
import { ConfigError } from '../../errors';
import { deriveSeed } from '../nn/init';
import { Linear, LoraOptions } from '../nn/linear';
import { Module } from '../nn/module';

/** True for the names of LoRA adapter parameters (`h.0.attn.c_attn.lora_A`). */
export function isLoraParameter(name: string): boolean {
  return /(^|\.)lora_[AB]$/.test(name);
}

/**
 * Enables LoRA on every Linear of `model` whose dotted path `select` accepts; each layer's
 * lora_A seed is derived from `seed` (default 0) and its path, so runs are reproducible. Returns
 * the paths, in module order. Throws ConfigError when nothing is selected.
 */
export function enableLoraWhere(model: Module, select: (path: string) => boolean, opts: LoraOptions): string[] {
  const chosen = [...model.namedModules()].filter(([path, m]) => m instanceof Linear && select(path)) as Array<[string, Linear]>;
  if (chosen.length === 0) throw new ConfigError(`lora: no Linear layer of ${model.constructor.name} matches the LoRA targets`);
  for (const [path, lin] of chosen) lin.enableLora({ ...opts, seed: deriveSeed(opts.seed ?? 0, 'lora', path) });
  return chosen.map(([path]) => path);
}

/** The Linear layers that currently carry adapters, by dotted path. */
export function loraLayers(model: Module): Map<string, Linear> {
  const out = new Map<string, Linear>();
  for (const [path, m] of model.namedModules()) if (m instanceof Linear && m.loraAdapters) out.set(path, m);
  return out;
}

/** Folds every adapter into its base weight (Linear.mergeLora); returns the merged paths. */
export function mergeAllLora(model: Module): string[] {
  const layers = loraLayers(model);
  for (const lin of layers.values()) lin.mergeLora();
  return [...layers.keys()];
}

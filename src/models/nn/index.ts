/** The nn layer library: modules with a tfjs forward and an ONNX emission each. */
export * from './module';
export * from './init';
export * from './activation';
export * from './linear';
export * from './embedding';
export * from './conv';
export * from './norm';
export * from './pool';
export * from './upsample';
export * from './dropout';
export * from './attention';
export * from './mlp';
export * from './transformer_block';

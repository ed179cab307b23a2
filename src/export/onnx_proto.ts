/**
 * The part of the ONNX protobuf schema (onnx/onnx.proto3, IR version 8) that hoi2anomaly writes and
 * reads: models, graphs, nodes, attributes, tensors, value infos, types, shapes, opset ids and
 * string maps. Field numbers are the official ones; messages and fields we never emit
 * (TrainingInfoProto, SparseTensorProto, FunctionProto, sequence/map types, quantization
 * annotations) are left out -- protobuf readers skip unknown fields, so models written by other
 * tools still decode.
 *
 * No `onnx-proto` package is installed: the schema is parsed once with protobufjs `parse`.
 * `keepCase` keeps the spec's snake_case field names (`op_type`, `raw_data`), so objects built here
 * read like the spec. int64 fields decode as `Long` in protobufjs; `decodeModel` converts them to
 * plain numbers (every int64 we write -- dims, attributes, opset versions -- is far below 2^53).
 */
import * as protobuf from 'protobufjs';

const ONNX_PROTO3 = `
syntax = "proto3";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; SPARSE_TENSORS = 12;
  }
  string name = 1;
  string ref_attr_name = 21;
  string doc_string = 13;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
}

message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
}

message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  string key = 1;
  string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7;
    STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13; COMPLEX64 = 14;
    COMPLEX128 = 15; BFLOAT16 = 16;
  }
  message Segment {
    int64 begin = 1;
    int64 end = 2;
  }
  enum DataLocation {
    DEFAULT = 0;
    EXTERNAL = 1;
  }
  repeated int64 dims = 1;
  int32 data_type = 2;
  Segment segment = 3;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  DataLocation data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  string denotation = 6;
}

message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}
`;

/** TensorProto.DataType values (onnx.proto3). */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

/** AttributeProto.AttributeType values (onnx.proto3). */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

/** Bytes per element of the fixed-width data types we store in `raw_data`. */
export const DATA_TYPE_BYTES: Readonly<Record<number, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.UINT16]: 2,
  [DataType.INT16]: 2,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
  [DataType.DOUBLE]: 8,
  [DataType.UINT32]: 4,
  [DataType.UINT64]: 8,
};

// Plain-object views of the messages, as encoded from and decoded to (snake_case, int64 as number).

export interface TensorShapeDim {
  dim_value?: number;
  dim_param?: string;
  denotation?: string;
}
export interface TypeObj {
  tensor_type?: { elem_type?: number; shape?: { dim?: TensorShapeDim[] } };
  denotation?: string;
}
export interface ValueInfoObj {
  name?: string;
  type?: TypeObj;
  doc_string?: string;
}
export interface TensorObj {
  dims?: number[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: number[];
  double_data?: number[];
  name?: string;
  doc_string?: string;
  raw_data?: Uint8Array;
  data_location?: number;
}
export interface AttributeObj {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorObj;
  g?: GraphObj;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorObj[];
  graphs?: GraphObj[];
  doc_string?: string;
}
export interface NodeObj {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttributeObj[];
  doc_string?: string;
}
export interface GraphObj {
  node?: NodeObj[];
  name?: string;
  initializer?: TensorObj[];
  doc_string?: string;
  input?: ValueInfoObj[];
  output?: ValueInfoObj[];
  value_info?: ValueInfoObj[];
}
export interface OpsetObj {
  domain?: string;
  version?: number;
}
export interface ModelObj {
  ir_version?: number;
  opset_import?: OpsetObj[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: GraphObj;
  metadata_props?: Array<{ key?: string; value?: string }>;
}

let cachedRoot: protobuf.Root | null = null;

/** The parsed schema (parsed on first use: about 5 ms). */
export function onnxRoot(): protobuf.Root {
  if (cachedRoot === null) cachedRoot = protobuf.parse(ONNX_PROTO3, { keepCase: true }).root;
  return cachedRoot;
}

/** The `onnx.ModelProto` message type. */
export function modelProtoType(): protobuf.Type {
  return onnxRoot().lookupType('onnx.ModelProto');
}

/** Serializes a model object (snake_case fields) to ModelProto bytes. */
export function encodeModel(model: ModelObj): Uint8Array {
  const type = modelProtoType();
  const err = type.verify(model);
  if (err) throw new Error(`ModelProto: ${err}`);
  return type.encode(type.fromObject(model)).finish();
}

/**
 * Parses ModelProto bytes into a plain object: int64 fields as numbers (not Long), bytes as
 * Uint8Array, enums as numbers, repeated fields present (possibly empty) and defaults filled in.
 */
export function decodeModel(bytes: Uint8Array): ModelObj {
  const type = modelProtoType();
  const msg = type.decode(bytes);
  return type.toObject(msg, { longs: Number, enums: Number, bytes: Uint8Array, arrays: true, defaults: false, oneofs: false }) as ModelObj;
}

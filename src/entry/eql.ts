/**
 * `sockeye/eql`: the EQL engine the Elastic rules run on, for queries of your own, and the ECS
 * document an exec becomes for them. Loading Elastic rule files is in the package root.
 */
export { EqlError, compileEql, compileEqlQuery, getField, type CompiledEql, type CompiledQuery, type CompiledSequence, type EqlDocument } from "../eql/compile.js";
export { RegexSyntaxError, compileRegex } from "../eql/regex.js";
export { compileWildcard, type StringMatcher } from "../eql/wildcard.js";
export { SequenceMatcher, type SequenceMatcherOptions, type SequenceStats } from "../eql/sequence.js";
export { parseEql, type EqlEventQuery, type EqlExpr, type EqlQuery, type EqlSequenceQuery, type ValueExpr } from "../eql/parser.js";
export { buildExecEcsDocument } from "../rules/elastic/ecs-exec.js";

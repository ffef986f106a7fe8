// Package witness implements the C2SP tlog-witness protocol
// (https://c2sp.org/tlog-witness) both ways: a Server that keeps, for every
// log it is configured to trust, the latest checkpoint it cosigned, checks
// that each new one extends it with an RFC 6962 §2.1.2 consistency proof,
// and cosigns it with a C2SP tlog-cosignature (cosignature/v1, Ed25519,
// https://c2sp.org/tlog-cosignature); and a Client that submits a log's
// checkpoints and reads the witness's answers.
//
// A witness is what a local copy of the latest checkpoint cannot be: a
// party outside the log's host. Once it cosigned tree size N, the log
// cannot show anyone who checks with it a different history of N entries,
// nor a shorter one: the witness refuses (409 Conflict, 422 Unprocessable
// Entity) and keeps the refused request as evidence.
//
// Beyond the specification, a Server answers GET <prefix>/checkpoint?origin=O
// with the latest checkpoint it cosigned for log O (the log's signature
// and its cosignature), which is what `agentmesh audit verify
// --witness-key` compares the log with (the specification leaves monitor
// retrieval open).
package witness

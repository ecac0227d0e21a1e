package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProducer produces the records of one transaction and tells, once they
// are flushed, whether the transaction may commit.
//
// franz-go commits what it can: GroupTransactSession.End(TryCommit)
// commits the records that were acknowledged and the consumed offsets even
// when another record of the transaction failed (its docs: "we commit
// whatever succeeded if the caller asks"). And when a produce error makes
// it reload the producer ID in the middle of a transaction (a batch a
// broker refused after an earlier one was acknowledged, its partition's log
// start past the last acknowledged offset), the InitProducerID it sends
// aborts what the transaction wrote so far, and the records after it go
// into a new transaction under the new epoch; End commits that one and
// reports success. Either way Kafka would hold part of a batch (results
// without their events, offsets without either) while the processor wrote
// the whole of it to Pebble. So before End the processor flushes, and
// aborts when a record failed or when the records were acknowledged under
// more than one producer ID or epoch. After a successful flush no produce
// is in flight, so nothing can change the producer ID before End.
//
// produce is safe for concurrent use with the promises it registers; flush
// and check are called from the transaction's goroutine.
type txnProducer struct {
	sess *kgo.GroupTransactSession
	ctx  context.Context

	mu     sync.Mutex
	failed error // the records that failed
	// The producer ID and epoch of the first record acknowledged, and
	// the first record acknowledged under another.
	acked bool
	pid   int64
	epoch int16
	split error
}

func newTxnProducer(ctx context.Context, sess *kgo.GroupTransactSession) *txnProducer {
	return &txnProducer{sess: sess, ctx: ctx}
}

// produce produces r in the transaction.
func (t *txnProducer) produce(r *kgo.Record) {
	t.sess.Produce(t.ctx, r, t.promise)
}

func (t *txnProducer) promise(r *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
		t.failed = errors.Join(t.failed, fmt.Errorf("produce to %s/%d: %w", r.Topic, r.Partition, err))
	case !t.acked:
		t.acked, t.pid, t.epoch = true, r.ProducerID, r.ProducerEpoch
	case t.split == nil && (r.ProducerID != t.pid || r.ProducerEpoch != t.epoch):
		t.split = fmt.Errorf("%w: a record to %s/%d was acknowledged under producer ID %d epoch %d, an earlier one of the same transaction under %d epoch %d: "+
			"the Kafka client re-initialized its producer ID mid-transaction, which aborted what the transaction had written before",
			errTxnSplit, r.Topic, r.Partition, r.ProducerID, r.ProducerEpoch, t.pid, t.epoch)
	}
}

// flush waits until every record produced so far is acknowledged or
// failed. Its error is the context's: the transaction's time ran out.
func (t *txnProducer) flush() error {
	return t.sess.Client().Flush(t.ctx)
}

// check returns why the records flushed so far must not commit: some
// failed, or they are not all in one transaction. Call it after flush.
func (t *txnProducer) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return errors.Join(t.failed, t.split)
}

// errTxnSplit marks a transaction whose records were acknowledged under
// more than one producer epoch.
var errTxnSplit = errors.New("strata: transaction split by a producer ID reload")

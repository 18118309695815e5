"""PrunePEFTCallback in a real transformers.Trainer on the packaged MiniLM and movie-sentiment rows:
the search meets the budget on the Trainer's batches, pruned units leave the model and the
optimizer, the metrics reach the logs, and the found configuration trains on above the majority class."""

from __future__ import annotations

import pytest
import torch

import prunepeft
from prunepeft.errors import UserError

TRAIN_ROWS, DEV_ROWS, MAX_LENGTH, BATCH, EPOCHS, SEED = 128, 200, 32, 16, 12, 42
SPACE, BUDGET = ["lora-4:q,k,v,o,ffn_in,ffn_out"], "73728"  # the CLI's defaults


@pytest.fixture(scope="module")
def movie():
    from prunepeft.data.subset import stratified_subset
    from prunepeft.data.tasks import load_task

    task = load_task("movie-sentiment")
    # the rows `prunepeft run --max-train-samples 128 --max-eval-samples 200 --seed 42` trains and evaluates on
    return stratified_subset(task.train, TRAIN_ROWS, seed=SEED), stratified_subset(task.dev, DEV_ROWS, seed=SEED)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trainer_for(model, tokenizer, rows, tmp_path, callbacks=(), epochs=EPOCHS):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from prunepeft.data.encode import encode_rows

    steps = epochs * (len(rows) // BATCH)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), per_device_train_batch_size=BATCH, num_train_epochs=epochs,
                             learning_rate=3e-3, warmup_steps=int(0.06 * steps), weight_decay=0.0, logging_steps=10, save_strategy="no",
                             report_to="none", seed=SEED, use_cpu=True, disable_tqdm=True, dataloader_num_workers=0)
    return Trainer(model=model, args=args, train_dataset=encode_rows(rows, tokenizer, ("sentence",), MAX_LENGTH, False),
                   data_collator=DataCollatorWithPadding(tokenizer), callbacks=list(callbacks))


def test_search_inside_a_trainer_meets_the_budget_and_trains_on(movie, tmp_path, one_thread):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

    from prunepeft.supernet.loading import DEFAULT_MODEL, resolve_model_path

    class Tracker(TrainerCallback):  # stands for a report_to integration: it only reads the logs
        seen: list = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append(dict(logs))

    train_rows, dev_rows = movie
    path = resolve_model_path(DEFAULT_MODEL)
    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    supernet = prunepeft.supernet_for(model, space=SPACE, budget=BUDGET)
    assert len(supernet.alive) == 36 and supernet.model is model
    tracker = Tracker()
    trainer = trainer_for(model, tokenizer, train_rows, tmp_path, callbacks=[tracker])
    callback = prunepeft.PrunePEFTCallback(supernet).install(trainer)
    assert trainer.callback_handler.callbacks[0] is callback
    watched = {u: [p.detach().clone() for p in supernet.unit_parameters(u)] for u in supernet.alive}
    params_of = {u: supernet.unit_parameters(u) for u in supernet.alive}
    trainer.train()

    assert callback.done and callback.trainable_params <= 73728
    assert callback.trainable_params >= 73728 - 7680  # the last round stops once the budget holds
    pruned = [u for u in watched if u not in callback.configuration]
    assert pruned and len(callback.trace) >= 2
    in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    for unit in pruned:  # out of the model, out of the optimizer, never updated after its round
        assert not any(id(p) in in_optimizer for p in params_of[unit])
        assert all(not p.requires_grad for p in params_of[unit])
    for unit in callback.configuration:
        assert all(id(p) in in_optimizer for p in params_of[unit])
        assert not all(torch.equal(a, b) for a, b in zip(watched[unit], params_of[unit]))  # trained on
    assert sum(1 for name, _ in model.named_modules() if name.endswith(".base")) == len({(u.layer, u.target) for u in callback.configuration})
    # the search metrics reached a tracker placed after it, and the Trainer's log history
    assert any("prunepeft/trainable_params" in logs for logs in Tracker.seen)
    assert any(h.get("prunepeft/search_done") == 1 for h in trainer.state.log_history)

    score = prunepeft.evaluate(model, dev_rows, tokenizer=tokenizer, max_length=MAX_LENGTH)["accuracy"]
    majority = max(sum(r["label"] == c for r in dev_rows) for c in (0, 1)) / len(dev_rows)
    print(f"\ncallback: dev accuracy {score:.4f} (majority {majority:.4f}) with {callback.trainable_params:,} unit params, "
          f"{len(callback.configuration)} units, {len(callback.trace)} rounds")
    assert score > majority + 0.05


def test_schedule_that_does_not_fit_is_a_user_error(movie, tmp_path, one_thread):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from prunepeft.supernet.loading import DEFAULT_MODEL, resolve_model_path

    path = resolve_model_path(DEFAULT_MODEL)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    supernet = prunepeft.supernet_for(model, space=SPACE, budget=BUDGET)
    trainer = trainer_for(model, AutoTokenizer.from_pretrained(path), movie[0][:32], tmp_path, epochs=1)
    trainer.add_callback(prunepeft.PrunePEFTCallback(supernet, warmup_steps=8))
    with pytest.raises(UserError, match="the Trainer runs 2 steps"):
        trainer.train()
    with pytest.raises(UserError, match="below the smallest unit"):
        prunepeft.supernet_for(AutoModelForSequenceClassification.from_pretrained(path, num_labels=2), space=SPACE, budget="100")

"""The seam into moto's ASL interpreter: the only module that touches moto's private classes.

moto runs the state machine (Pass/Choice/Map/Parallel, Retry/Catch, intrinsics, the history) but
has no SageMaker integration and runs Lambda only in Docker. Two bindings are replaced:

* `state_task_factory.state_task_service_for` (imported there by name, so that module global is
  the binding `state_task_for` reads): `sagemaker` resources get `LocalSageMakerTask`.
* `lambda_eval_utils.boto_client_for`: for the `lambda` service it returns the in-process
  `LocalLambda`, so moto's own Lambda integrations (`lambda:invoke` and plain function ARNs) keep
  their parameter handling, error mapping and history events.
* `state_fail.CustomErrorName`: moto refuses a Fail state whose Error (often `ErrorPath:
  $.error.Error` after a Catch) is a `States.*` name and turns it into `States.Runtime`; Step
  Functions re-raises such a name as it is, so the Fail state gets a name class without that check.
* `StepFunctionsParserBackend.start_execution`: moto names an execution started without a name
  `None`; Step Functions gives it a UUID (the API handler and the console rely on that).
* `ExecutionState._evaluate_with_timeout`: a state timeout armed in `emulator.faults`
  (`state_timeout`) fails the attempt with the `EvalTimeoutError` moto raises when TimeoutSeconds
  elapses, so it becomes `States.Timeout` (a `TaskTimedOut` event) and goes through the state's
  Retry and Catch, without the real wait.
* `EventManager.add_event`: every history event also bumps `history_version()`, so a waiter
  reads the history (a serialisation of every event, tens of ms) only when it has grown.
* `AmazonStateLanguageParser.parse` and `ExecutionWorker._get_evaluation_entrypoint`: a program
  parsed once (at CreateStateMachine's validation) is handed to the next execution of the same
  definition instead of being parsed again (see `_SpareParses`).

Importing this module defers `moto/batch/__init__.py` (see `_defer_package_init`): moto's task
factory needs one enum from `moto.batch.utils`, not batch's and EC2's models.

`check_contract()` verifies every private name and signature this relies on and fails with a
clear message when a moto upgrade moves them (it runs at install time and in the tests).
"""

from __future__ import annotations

import datetime
import importlib.util
import inspect
import json
import sys
import threading
import types
import uuid
from collections.abc import Callable
from typing import Any

_DEFERRED_PACKAGES = ("moto.batch",)


class _DeferredPackage(types.ModuleType):
    """A package whose `__init__` has not run yet: its submodules import normally, and the first
    attribute read that `__init__` would have defined runs it (so moto's backend lookup of
    `moto.batch.batch_backends`, or anyone's `from moto.batch import X`, works as usual)."""

    _lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        with _DeferredPackage._lock:
            if type(self) is _DeferredPackage:
                self.__class__ = types.ModuleType  # first: attributes read while __init__ runs are plain
                assert self.__spec__ is not None and self.__spec__.loader is not None
                self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def _defer_package_init(name: str) -> None:
    """Register `name` without running its `__init__` (a no-op when it is already imported).

    moto's ASL task factory imports `moto.batch.utils` for one enum; `moto/batch/__init__.py`
    imports batch's models and, through them, EC2's (0.8 s, a third of the start-up) which a run
    never uses. tests/emulator/test_interpreter_contract.py fails when a moto upgrade makes this
    deferral pointless (EC2 imported anyway) or wrong (the package not completed on first use).
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not a package in this moto: nothing to defer, the contract check says so
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _DeferredPackage
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


for _package in _DEFERRED_PACKAGES:
    _defer_package_init(_package)

from botocore.exceptions import ClientError  # noqa: E402
from moto.stepfunctions.parser.api import (  # noqa: E402
    ExecutionStatus,
    GetExecutionHistoryOutput,
    HistoryEventType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (  # noqa: E402
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (  # noqa: E402
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.exec.state_task import (  # noqa: E402
    lambda_eval_utils,
    state_task_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: E402
    state_task_service_callback as _callback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (  # noqa: E402
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask  # noqa: E402
from moto.stepfunctions.parser.asl.component.state.fail import state_fail  # noqa: E402
from moto.stepfunctions.parser.asl.eval.environment import Environment  # noqa: E402
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails  # noqa: E402
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager  # noqa: E402
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser  # noqa: E402
from moto.stepfunctions.parser.asl.utils import boto_client  # noqa: E402
from moto.stepfunctions.parser.backend.execution import Execution  # noqa: E402
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker  # noqa: E402
from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends  # noqa: E402
from moto.stepfunctions.parser.utils import TMP_THREADS  # noqa: E402
from moto.stepfunctions.responses import StepFunctionResponse  # noqa: E402

from emulator import iam, service_models  # noqa: E402
from emulator.faults import ApiFault, Faults  # noqa: E402
from emulator.lambdas import LocalLambda  # noqa: E402
from emulator.sagemaker import LocalSageMaker, SageMakerApiError  # noqa: E402
from emulator.service_models import RequestInvalid  # noqa: E402

StateTaskServiceCallback = _callback.StateTaskServiceCallback


class SeamError(RuntimeError):
    """moto's private interpreter API is not what this runtime was written against."""


_SYNC_ACTIONS = {
    "createtrainingjob": "TrainingJob",
    "createtransformjob": "TransformJob",
    "createprocessingjob": "ProcessingJob",
}
_REQUEST_RESPONSE_ACTIONS = {"createmodel"} | set(_SYNC_ACTIONS)
_POLL_SECONDS = 0.1  # how often a .sync task re-checks that its state has not timed out


def _operation(api_action: str) -> str:
    """`createTrainingJob` (the ASL resource's action) -> `CreateTrainingJob` (the API operation)."""
    return api_action[:1].upper() + api_action[1:]


class _Active:
    """The runtime currently plugged into the interpreter (moto's bindings are process-wide)."""

    sagemaker: LocalSageMaker | None = None
    lambdas: LocalLambda | None = None
    roles: iam.RoleSource | None = None
    faults: Faults | None = None
    owner: object | None = None
    lock = threading.Lock()


class _ScaledClock:
    """`time` for moto's Retry evaluator, whose back-off is `time.sleep(IntervalSeconds * ...)`:
    the waits of a Retry multiplied by `scale` (tests run the real ASL's 30 s / 120 s back-off as 0),
    everything else the real `time`. The ASL keeps AWS's numbers; only the local clock is faster."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        _REAL_TIME.sleep(max(0.0, seconds * self.scale))

    def __getattr__(self, name: str) -> Any:
        return getattr(_REAL_TIME, name)


_REAL_TIME = retrier_decl.time


class _ReraisedErrorName(ErrorName):
    """An error name a Fail state raises: any string, `States.TaskFailed` included (as on AWS)."""


_ORIGINAL_FAIL_ERROR_NAME = state_fail.CustomErrorName
_ORIGINAL_START_EXECUTION = StepFunctionsParserBackend.start_execution


def _start_execution(
    self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
) -> Any:
    return _ORIGINAL_START_EXECUTION(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)


_ORIGINAL_SERVICE_FOR = state_task_factory.state_task_service_for
_ORIGINAL_PARSE = AmazonStateLanguageParser.parse
_ORIGINAL_ENTRYPOINT = ExecutionWorker._get_evaluation_entrypoint


class _SpareParses:
    """Parsing the ASL costs a quarter to half a second, and moto parses a definition at
    CreateStateMachine (validation, result thrown away) and again at every StartExecution.
    Every parse made while the seam is installed leaves its program here; the next execution of
    that definition takes it instead of parsing again. A program is handed to one execution at
    most (it is taken, not shared), and it is exactly what parsing the same text would build."""

    programs: dict[str, Any] = {}
    lock = threading.Lock()

    @classmethod
    def clear(cls) -> None:
        with cls.lock:
            cls.programs.clear()


def _parse(definition: str) -> Any:
    program, tree = _ORIGINAL_PARSE(definition)
    with _SpareParses.lock:
        _SpareParses.programs[definition] = program
    return program, tree


_EXECUTION_THREADS: dict[str, threading.Thread] = {}  # execution ARN -> the thread evaluating it


def execution_thread(arn: str) -> threading.Thread | None:
    """The thread running an execution (None until it has started or when it is not ours): a
    waiter joins it to see the end at once, instead of polling DescribeExecution."""
    return _EXECUTION_THREADS.get(arn)


def _evaluation_entrypoint(self: Any) -> Any:
    # runs first thing in the execution's own thread
    _EXECUTION_THREADS[str(self._evaluation_details.execution_details.arn)] = threading.current_thread()
    definition = self._evaluation_details.state_machine_details.definition
    with _SpareParses.lock:
        program = _SpareParses.programs.pop(definition, None)
    return program if program is not None else _ORIGINAL_PARSE(definition)[0]


_ORIGINAL_CLIENT_FOR = lambda_eval_utils.boto_client_for
_ORIGINAL_GET_HISTORY = StepFunctionResponse.get_execution_history


def _get_execution_history(self: Any) -> Any:
    """GetExecutionHistory honouring `reverseOrder` (moto ignores it: the newest event first, as
    AWS answers; a reader of the current state, e.g. GET /executions/{id}, takes the first one)."""
    answer = _ORIGINAL_GET_HISTORY(self)
    if self._get_param("reverseOrder"):
        result = dict(answer.result)
        result["events"] = list(reversed(result["events"]))
        answer = type(answer)(result)
    return answer


def _history_reads_reverse_order() -> bool:
    """Whether moto's own GetExecutionHistory reads `reverseOrder` (then the seam must not reverse)."""
    current = StepFunctionResponse.get_execution_history
    original = _ORIGINAL_GET_HISTORY if current is _get_execution_history else current
    return "reverseOrder" in original.__code__.co_consts


_ORIGINAL_ADD_EVENT = EventManager.add_event
_ORIGINAL_EVALUATE_WITH_TIMEOUT = ExecutionState._evaluate_with_timeout


def _evaluate_with_timeout(self: Any, env: Environment) -> None:
    """One attempt of an execution state; an armed `state_timeout` of this state makes it time out.

    moto runs the attempt in a thread and raises `EvalTimeoutError` when TimeoutSeconds elapses
    first; a Task's `_from_error` turns that into `States.Timeout`. The fault raises the same error,
    either before the task's work (nothing done in time) or after it (`late`: the work's effects
    exist, its answer is discarded), so Retry, Catch and the history are those of a real timeout.
    """
    faults = _Active.faults
    armed = faults.take_state_timeout(str(self.name)) if faults is not None else None
    if armed is None:
        return _ORIGINAL_EVALUATE_WITH_TIMEOUT(self, env)
    if not armed.late:
        raise EvalTimeoutError()
    work = self._eval_execution

    def work_then_time_out(frame: Environment) -> None:
        work(frame)
        raise EvalTimeoutError()

    # the attribute shadows the method for this attempt only (one program per execution)
    self._eval_execution = work_then_time_out
    try:
        return _ORIGINAL_EVALUATE_WITH_TIMEOUT(self, env)
    finally:
        del self._eval_execution


class _History:
    """How many history events every execution of this process has added so far (see
    `history_version`)."""

    version = 0
    lock = threading.Lock()


def _add_event(self: Any, *args: Any, **kwargs: Any) -> Any:
    event_id = _ORIGINAL_ADD_EVENT(self, *args, **kwargs)
    with _History.lock:
        _History.version += 1
    return event_id


def history_version() -> int:
    """A number that changes whenever any execution's history gets an event. A waiter that saw
    the same number last time has nothing new to show, and skips GetExecutionHistory (whose answer
    serialises every event of the execution: 35 ms at the end of a run, CPU the jobs need)."""
    return _History.version


_ORIGINAL_BOTO_CLIENT_FOR = boto_client.boto_client_for
_ORIGINAL_LAMBDA_ERROR = StateTaskServiceLambda._error_cause_from_client_error


def _lambda_error(client_error: ClientError) -> tuple[str, str]:
    """moto names every Invoke API error `Lambda.<code>`; Step Functions does so only for the errors
    Invoke models (Lambda.TooManyRequestsException) and names the rest `Lambda.AWSLambdaException`
    (an AccessDeniedException included), the code staying in the cause."""
    _, cause = _ORIGINAL_LAMBDA_ERROR(client_error)
    code = client_error.response["Error"]["Code"]
    return service_models.step_functions_error("lambda", "Invoke", code), cause


# --------------------------------------------------------------------------------------------
# Contract with moto
# --------------------------------------------------------------------------------------------
def _params(func: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


def _names_used(code: types.CodeType) -> set[str]:
    """The global and attribute names a function's code reads, its nested functions' included."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names_used(constant)
    return names


class RestoredExecution(Execution):
    """A finished execution of an earlier process, read back from the state directory.

    Step Functions keeps an execution's status, input, output and history after it ends; moto keeps
    them in memory only, so without this a new `emulator api` (and the console on it) would list no
    earlier run. It is the record as ListExecutions, DescribeExecution and GetExecutionHistory
    answered it when it ended, never evaluated again (no worker, no thread)."""

    def __init__(self, record: dict[str, Any], state_machine: Any, account_id: str, region_name: str) -> None:
        # the record keeps input and output parsed (runtime.describe), as DescribeExecution's JSON
        input_text = json.dumps(record.get("input") if record.get("input") is not None else {})
        super().__init__(
            name=record["name"],
            sm_type=state_machine.sm_type,
            role_arn=state_machine.roleArn,
            exec_arn=record["executionArn"],
            account_id=account_id,
            region_name=region_name,
            state_machine=state_machine,
            start_date=_timestamp(record["startDate"]),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=input_text,
        )
        self.exec_status = ExecutionStatus(record["status"])
        self.stop_date = _timestamp(record["stopDate"]) if record.get("stopDate") else None
        self.output = record.get("output")
        self.error = record.get("error")
        self.cause = record.get("cause")
        self._events = [{**event, "timestamp": _timestamp(event["timestamp"])} for event in record["events"]]

    def to_history_output(self) -> GetExecutionHistoryOutput:
        return GetExecutionHistoryOutput(events=self._events)


def _timestamp(value: Any) -> datetime.datetime:
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(str(value))


def restore_executions(records: list[dict[str, Any]], state_machine_arn: str) -> int:
    """Put the recorded finished executions of `state_machine_arn` back into moto's Step Functions
    (the machine was just created, so none of them is there yet); returns how many."""
    account_id, region = state_machine_arn.split(":")[4], state_machine_arn.split(":")[3]
    backend = stepfunctions_parser_backends[account_id][region]
    machine = backend.describe_state_machine(state_machine_arn)
    known = {e.name for e in machine.executions}
    restored = [
        RestoredExecution(r, machine, account_id, region)
        for r in records
        if r.get("events")
        and r["name"] not in known
        and r["executionArn"].startswith(state_machine_arn.replace(":stateMachine:", ":execution:") + ":")
    ]
    machine.executions.extend(restored)
    return len(restored)


def check_contract() -> None:
    """Raise SeamError naming what changed if moto's private API no longer fits the seam."""
    problems = []
    if "state_task_service_for" not in state_task_factory.state_task_for.__code__.co_names:
        problems.append(
            "state_task_factory.state_task_for no longer calls the module global state_task_service_for"
        )
    if _params(_ORIGINAL_SERVICE_FOR) != ["service_name"]:
        problems.append(f"state_task_service_for{_params(_ORIGINAL_SERVICE_FOR)} (expected service_name)")
    for caller in ("_invoke_lambda_function", "exec_lambda_function"):
        func = getattr(lambda_eval_utils, caller, None)
        if func is None or "boto_client_for" not in func.__code__.co_names:
            problems.append(f"lambda_eval_utils.{caller} no longer gets its client from boto_client_for")
    if _params(_ORIGINAL_CLIENT_FOR)[:2] != ["region", "service"]:
        problems.append(f"boto_client_for{_params(_ORIGINAL_CLIENT_FOR)} (expected region, service, ...)")
    expected = {
        "_eval_service_task": ["env", "resource_runtime_part", "normalised_parameters"],
        "_build_sync_resolver": ["env", "resource_runtime_part", "normalised_parameters"],
        "_eval_sync": ["env", "sync_resolver", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"],
        "_from_error": ["env", "ex"],
        "_validate_service_integration_is_supported": [],
    }
    for name, params in expected.items():
        method = getattr(StateTaskServiceCallback, name, None)
        if method is None:
            problems.append(f"StateTaskServiceCallback.{name} is gone")
        elif _params(method)[: len(params)] != params:
            problems.append(f"StateTaskServiceCallback.{name}{_params(method)} (expected {params} first)")
    if "CustomErrorName" not in state_fail.StateFail._eval_state.__code__.co_names:
        problems.append("StateFail._eval_state no longer builds its error name with CustomErrorName")
    if _params(ErrorName.__init__)[:1] != ["error_name"]:
        problems.append(f"ErrorName{_params(ErrorName.__init__)} (expected error_name)")
    if _params(_ORIGINAL_START_EXECUTION)[:2] != ["state_machine_arn", "name"]:
        problems.append(
            f"StepFunctionsParserBackend.start_execution{_params(_ORIGINAL_START_EXECUTION)} changed"
        )
    if _params(_ORIGINAL_PARSE) != ["definition"]:
        problems.append(f"AmazonStateLanguageParser.parse{_params(_ORIGINAL_PARSE)} (expected definition)")
    entrypoint_names = set(_ORIGINAL_ENTRYPOINT.__code__.co_names)
    if _params(_ORIGINAL_ENTRYPOINT) != [] or not {"parse", "state_machine_details", "definition"} <= (
        entrypoint_names
    ):
        problems.append("ExecutionWorker._get_evaluation_entrypoint no longer parses the definition")
    logic_names = ExecutionWorker._execution_logic.__code__.co_names
    if "_get_evaluation_entrypoint" not in logic_names:
        problems.append("ExecutionWorker._execution_logic no longer calls _get_evaluation_entrypoint")
    if "terminated" not in logic_names:  # the thread's end is the execution's end (waiters join it)
        problems.append("ExecutionWorker._execution_logic no longer ends with the execution")
    if not {"execution_details", "arn"} <= set(ExecutionWorker._get_evaluation_environment.__code__.co_names):
        problems.append("ExecutionWorker._evaluation_details.execution_details.arn is gone")
    if not callable(getattr(Environment, "is_running", None)):
        problems.append("Environment.is_running is gone")
    if not isinstance(TMP_THREADS, list):
        problems.append("moto.stepfunctions.parser.utils.TMP_THREADS is no longer a list")
    if _params(_ORIGINAL_ADD_EVENT)[:2] != ["context", "event_type"] or (
        "_publish_history_event" not in _ORIGINAL_ADD_EVENT.__code__.co_names
    ):
        problems.append("EventManager.add_event(context, event_type, ...) no longer publishes the event")
    if _params(_ORIGINAL_EVALUATE_WITH_TIMEOUT) != ["env"] or not {"_eval_execution", "timeout"} <= (
        _names_used(_ORIGINAL_EVALUATE_WITH_TIMEOUT.__code__)
    ):
        problems.append(
            "ExecutionState._evaluate_with_timeout(env) no longer runs _eval_execution under a timeout"
        )
    if "TimeoutError" not in StateTask._from_error.__code__.co_names:
        problems.append("StateTask._from_error no longer turns a TimeoutError into States.Timeout")
    if _params(FailureEvent.__init__)[:4] != ["env", "error_name", "event_type", "event_details"]:
        problems.append(f"FailureEvent{_params(FailureEvent.__init__)} changed")
    if not isinstance(
        StateTaskServiceLambda.__dict__.get("_error_cause_from_client_error"), staticmethod
    ) or (_params(_ORIGINAL_LAMBDA_ERROR) != ["client_error"]):
        problems.append("StateTaskServiceLambda._error_cause_from_client_error(client_error) changed")
    for name in _INTEGRATION_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "boto_client_for", None) not in (_ORIGINAL_BOTO_CLIENT_FOR, _integration_client):
            problems.append(f"{name} no longer creates its clients with boto_client.boto_client_for")
    if retrier_decl.time is not _REAL_TIME and not isinstance(retrier_decl.time, _ScaledClock):
        problems.append("retrier_decl.time is no longer the time module")
    if "sleep" not in retrier_decl.RetrierDecl._eval_body.__code__.co_names:
        problems.append("RetrierDecl._eval_body no longer waits with time.sleep")
    if _history_reads_reverse_order():
        problems.append(
            "StepFunctionResponse.get_execution_history now reads reverseOrder: drop the reversal"
        )
    elif _params(_ORIGINAL_GET_HISTORY) != [] or "_get_param" not in _ORIGINAL_GET_HISTORY.__code__.co_names:
        problems.append("StepFunctionResponse.get_execution_history no longer reads the request's parameters")
    if problems:
        raise SeamError("moto's ASL interpreter changed under the local runtime: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# Installing the seam
# --------------------------------------------------------------------------------------------
def _service_for(service_name: str) -> Any:
    if service_name == "sagemaker" and _Active.sagemaker is not None:
        return LocalSageMakerTask()
    return _ORIGINAL_SERVICE_FOR(service_name)


def _state_machine_role() -> iam.Role | None:
    return _Active.roles.for_state_machine() if _Active.roles is not None else None


class _InvokingAs:
    """The in-process Lambda, invoked as the state machine's role (lambda:InvokeFunction checked).

    moto evaluates an execution on threads of its own (a program's worker thread, a state's timeout
    thread), so the caller's role travels with the client, not with a thread."""

    def __init__(self, lambdas: LocalLambda, role: iam.Role | None):
        self._lambdas = lambdas
        self._role = role

    def invoke(self, **kwargs: Any) -> Any:
        with iam.acting_as(self._role):
            return self._lambdas.invoke(**kwargs)


def _client_for(region: str, service: str, *args: Any, **kwargs: Any) -> Any:
    if service == "lambda" and _Active.lambdas is not None:
        return _InvokingAs(_Active.lambdas, _state_machine_role())
    return _integration_client(region, service, *args, **kwargs)


def _integration_client(region: str, service: str, *args: Any, **kwargs: Any) -> Any:
    """A boto3 client of an optimized integration (sns:publish, dynamodb:putItem...), acting as the
    state machine's role for every call it makes (see `emulator.enforcement`)."""
    client = _ORIGINAL_BOTO_CLIENT_FOR(region, service, *args, **kwargs)
    iam.bind_role(client, _state_machine_role())
    faults = _Active.faults
    if faults is not None:
        client.meta.events.register("before-call", _integration_fault(faults, service))
    return client


def _integration_fault(faults: Faults, service: str) -> Callable[..., None]:
    """A before-call hook raising an armed `integration_error` as the service's ClientError, which
    the integration (moto's sns task) names as Step Functions does (`SNS.<Code>Exception`)."""

    def before_call(model: Any, **_: Any) -> None:
        armed = faults.take_integration_error(service, model.name)
        if armed is not None:
            code, message, status = armed
            error = {"Code": code, "Message": message}
            raise ClientError({"Error": error, "ResponseMetadata": iam.response_metadata(status)}, model.name)

    return before_call


# every moto module that imported boto_client_for by name gets the role-bound factory
_INTEGRATION_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
)


def install(
    owner: object,
    sagemaker: LocalSageMaker,
    lambdas: LocalLambda,
    roles: iam.RoleSource | None = None,
    retry_wait_scale: float = 1.0,
    faults: Faults | None = None,
) -> None:
    """Route sagemaker and lambda tasks of every execution in this process to these objects;
    `faults` arms state timeouts and integration errors (the services' own faults live with them)."""
    check_contract()
    with _Active.lock:
        if _Active.owner is not None and _Active.owner is not owner:
            raise RuntimeError("another local runtime is active in this process; close it first")
        _Active.owner, _Active.sagemaker, _Active.lambdas, _Active.roles = owner, sagemaker, lambdas, roles
        _Active.faults = faults
        ExecutionState._evaluate_with_timeout = _evaluate_with_timeout  # type: ignore[method-assign]
        state_task_factory.state_task_service_for = _service_for
        lambda_eval_utils.boto_client_for = _client_for
        state_fail.CustomErrorName = _ReraisedErrorName
        StepFunctionsParserBackend.start_execution = _start_execution  # type: ignore[method-assign]
        _SpareParses.clear()  # programs built before install may hold moto's own SageMaker task
        AmazonStateLanguageParser.parse = staticmethod(_parse)  # type: ignore[method-assign,assignment]
        ExecutionWorker._get_evaluation_entrypoint = _evaluation_entrypoint  # type: ignore[method-assign]
        StateTaskServiceLambda._error_cause_from_client_error = staticmethod(_lambda_error)  # type: ignore[method-assign]
        retrier_decl.time = _ScaledClock(retry_wait_scale) if retry_wait_scale != 1.0 else _REAL_TIME  # type: ignore[assignment]
        StepFunctionResponse.get_execution_history = _get_execution_history  # type: ignore[method-assign]
        EventManager.add_event = _add_event  # type: ignore[method-assign]
        for name in _INTEGRATION_MODULES:
            importlib.import_module(name).boto_client_for = _integration_client  # type: ignore[attr-defined]


def uninstall(owner: object) -> None:
    with _Active.lock:
        if _Active.owner is owner:
            _Active.owner = _Active.sagemaker = _Active.lambdas = _Active.roles = None
            _Active.faults = None
            ExecutionState._evaluate_with_timeout = _ORIGINAL_EVALUATE_WITH_TIMEOUT  # type: ignore[method-assign]
            state_task_factory.state_task_service_for = _ORIGINAL_SERVICE_FOR
            lambda_eval_utils.boto_client_for = _ORIGINAL_CLIENT_FOR
            state_fail.CustomErrorName = _ORIGINAL_FAIL_ERROR_NAME
            StepFunctionsParserBackend.start_execution = _ORIGINAL_START_EXECUTION  # type: ignore[method-assign]
            AmazonStateLanguageParser.parse = staticmethod(_ORIGINAL_PARSE)  # type: ignore[method-assign]
            ExecutionWorker._get_evaluation_entrypoint = _ORIGINAL_ENTRYPOINT  # type: ignore[method-assign]
            StateTaskServiceLambda._error_cause_from_client_error = staticmethod(_ORIGINAL_LAMBDA_ERROR)  # type: ignore[method-assign]
            retrier_decl.time = _REAL_TIME  # type: ignore[assignment]
            StepFunctionResponse.get_execution_history = _ORIGINAL_GET_HISTORY  # type: ignore[method-assign]
            EventManager.add_event = _ORIGINAL_ADD_EVENT  # type: ignore[method-assign]
            for name in _INTEGRATION_MODULES:
                importlib.import_module(name).boto_client_for = _ORIGINAL_BOTO_CLIENT_FOR  # type: ignore[attr-defined]
            _SpareParses.clear()


def clear_threads() -> None:
    """moto appends every worker thread to TMP_THREADS forever; drop the finished ones."""
    TMP_THREADS[:] = [t for t in TMP_THREADS if t.is_alive()]
    for arn, thread in list(_EXECUTION_THREADS.items()):
        if not thread.is_alive():
            _EXECUTION_THREADS.pop(arn, None)


# --------------------------------------------------------------------------------------------
# arn:aws:states:::sagemaker:<action>[.sync]
# --------------------------------------------------------------------------------------------
_SYNC_RULES = {
    "TrainingJob": "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    "TransformJob": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    "ProcessingJob": "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
}


def _sagemaker_requests(
    operation: str, params: dict[str, Any], sagemaker: LocalSageMaker, sync: bool
) -> list[iam.Request]:
    """What the state machine's role needs for one SageMaker task (Step Functions developer guide,
    "IAM policies for Amazon SageMaker AI"): the Create* call on the job's ARN, iam:PassRole of the
    role the job runs with, AddTags when tags are passed, and for .sync the Describe* polling, the
    ListTags call and the managed EventBridge rule it waits on."""
    kind = operation.removeprefix("Create")  # TrainingJob, TransformJob, ProcessingJob, Model
    name = params.get(f"{kind}Name") or ""
    arn = sagemaker.arn_of(kind, str(name))
    requests = [iam.Request(f"sagemaker:{operation}", arn)]
    passed = params.get("ExecutionRoleArn") if kind == "Model" else params.get("RoleArn")
    if passed:
        requests.append(
            iam.Request("iam:PassRole", str(passed), (("iam:PassedToService", "sagemaker.amazonaws.com"),))
        )
    if params.get("Tags"):
        requests.append(iam.Request("sagemaker:AddTags", arn))
    if sync and kind in _SYNC_RULES:
        requests.append(iam.Request(f"sagemaker:Describe{kind}", arn))
        requests.append(iam.Request("sagemaker:ListTags", arn))
        rule = f"arn:aws:events:{sagemaker.region}:{sagemaker.account}:rule/{_SYNC_RULES[kind]}"
        requests.extend(iam.Request(f"events:{a}", rule) for a in ("PutTargets", "PutRule", "DescribeRule"))
    return requests


class LocalSageMakerTask(StateTaskServiceCallback):
    """Task state for SageMaker, backed by `LocalSageMaker`.

    One instance per Task state, shared by every Map iteration and retry on other threads: no
    per-call attributes on self (the job ARN travels inside the resolver closure).
    """

    def __init__(self) -> None:
        # WaitForTaskToken is listed although only .sync is used: moto's _eval_integration_pattern
        # calls callback_endpoint.interrupt_all() unconditionally, and the endpoint only exists
        # when WaitForTaskToken is a supported pattern.
        super().__init__(
            supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
        )

    def _validate_service_integration_is_supported(self) -> None:  # at create_state_machine
        action = self.resource.api_action.lower()
        if action not in _REQUEST_RESPONSE_ACTIONS:
            raise ValueError(
                f"sagemaker:{self.resource.api_action} is not emulated locally "
                f"(supported: {sorted(_REQUEST_RESPONSE_ACTIONS)})"
            )
        if self.resource.condition == ResourceCondition.Sync and action not in _SYNC_ACTIONS:
            raise ValueError(f"sagemaker:{self.resource.api_action}.sync is not a valid integration")
        if self.resource.condition not in (None, ResourceCondition.Sync):
            raise ValueError(
                f"sagemaker:{self.resource.api_action}.{self.resource.condition} is not supported"
            )

    @staticmethod
    def _emulator() -> LocalSageMaker:
        if _Active.sagemaker is None:
            raise RuntimeError("no local runtime is active")
        return _Active.sagemaker

    def _eval_service_task(
        self, env: Environment, resource_runtime_part: Any, normalised_parameters: dict, *_: Any, **__: Any
    ) -> None:
        action = self.resource.api_action.lower()
        sagemaker = self._emulator()
        # what SageMaker's API refuses (enums, lengths, patterns, unknown fields) is refused here
        operation = _operation(self.resource.api_action)
        service_models.check("sagemaker", operation, normalised_parameters)
        role = _state_machine_role()
        if role is not None:  # the state machine's role must allow the call and the .sync polling
            try:
                iam.authorize(
                    role, _sagemaker_requests(operation, normalised_parameters, sagemaker, self._is_sync())
                )
            except iam.AccessDenied as exc:
                raise SageMakerApiError("AccessDeniedException", exc.message) from None
        call = {
            "createtrainingjob": sagemaker.create_training_job,
            "createtransformjob": sagemaker.create_transform_job,
            "createprocessingjob": sagemaker.create_processing_job,
            "createmodel": sagemaker.create_model,
        }[action]
        try:
            result = call(normalised_parameters)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # a request of the wrong shape: SageMaker's API rejects it before any job exists
            raise SageMakerApiError(
                "ValidationException", f"Invalid request: {type(exc).__name__}: {exc}"
            ) from exc
        env.stack.append(result)

    def _is_sync(self) -> bool:
        return self.resource.condition == ResourceCondition.Sync

    def _build_sync_resolver(
        self, env: Environment, resource_runtime_part: Any, normalised_parameters: dict, *_: Any, **__: Any
    ) -> Callable[[], Any]:
        submitted = env.stack.pop()
        kind = _SYNC_ACTIONS[self.resource.api_action.lower()]
        arn = submitted[f"{kind}Arn"]
        sagemaker = self._emulator()

        def resolve() -> Any:
            describe = sagemaker.wait(arn, timeout=_POLL_SECONDS)
            if describe is None:
                return None
            if describe.get(f"{kind}Status") == "Completed":
                return describe
            # what Step Functions reports for a .sync job that Failed or was Stopped
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=json.dumps(describe),
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            )

        resolve.job_arn = arn  # type: ignore[attr-defined]
        return resolve

    def _eval_sync(
        self,
        env: Environment,
        sync_resolver: Any,
        timeout_seconds: Any,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
        *_: Any,
        **__: Any,
    ) -> Any:
        # moto's loop sleeps 0.5 s between polls; the resolver blocks on the process instead, so
        # a job's end is seen at once and a timed-out state kills its process within _POLL_SECONDS.
        try:
            while env.is_running():
                result = sync_resolver()
                if result is not None:
                    return result
            return None
        finally:
            self._emulator().stop(
                sync_resolver.job_arn, "Stopped: the state timed out or the execution stopped"
            )

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, (SageMakerApiError, ApiFault, ClientError, RequestInvalid)):
            if isinstance(ex, ClientError):
                code, message = ex.response["Error"]["Code"], ex.response["Error"]["Message"]
                status = int(ex.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            else:
                code, message = ex.code, ex.message
                status = 403 if code.startswith("AccessDenied") else 400
            cause = (
                f"{message} (Service: AmazonSageMaker; Status Code: {status}; Error Code: {code}; "
                f"Request ID: {uuid.uuid4()}; Proxy: null)"
            )
            # a modeled exception under its own name (SageMaker.ResourceLimitExceededException), the
            # rest as the SDK's base class, as Step Functions reports them
            name = service_models.step_functions_error(
                "sagemaker", _operation(self.resource.api_action), code
            )
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(name),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=name,
                        cause=cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return super()._from_error(env, ex)
